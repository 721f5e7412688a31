"""The ``file://`` storage backend: objects as read-only files below a local directory.

Each write goes to a temp file created with ``O_EXCL`` in the object's own folder, is made
durable (fsync), and is then hard-linked to its final name. ``link`` fails when the name
exists, so two writers racing for one key cannot overwrite each other: exactly one wins and
the other gets False. On a filesystem without hard links the temp file is renamed instead,
after checking that the name is absent (not atomic against a concurrent writer there).

Bulk paths for the embedded remote, whose client is on this machine: :meth:`LocalBackend.put_file`
stores a local file by reflinking or copying it (never by a hard link: the remote's object
must not share an inode with the client's store or a work tree, where a user can make a
file writable and change it), without a sync per object; :meth:`LocalBackend.sync` then
makes a whole batch durable at once, and :meth:`LocalBackend.local_path` lets the caller
read (and re-hash) what is stored.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from ama.plumbing import wire
from ama.plumbing.durable import new_file, write_all
from ama.plumbing.errors import DISK_FULL, BadInput
from ama.plumbing.link import LinkFailed, reflink
from ama.plumbing.odb import fsync_dir, syncfs
from ama_remote.storage.base import (
    CHUNK,
    Joined,
    Leftover,
    ObjectMissing,
    SizedReader,
    SizeMismatch,
    StorageDenied,
    StorageFull,
    StorageUnreachable,
    check_key,
    check_method,
    check_upload_id,
)

_TEMP_PREFIX = ".tmp-"
# After an upload's part prefix, the name of a join of its parts (then a token of its own).
_JOINED = "joined-"
# link() errors that mean "this filesystem has no hard links", not "the name exists".
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


class LocalBackend:
    """Objects under ``root`` (an absolute directory, created on the first write)."""

    def __init__(self, root: str | os.PathLike[str], url: str | None = None) -> None:
        self.root = Path(root)
        self.url = url or self.root.as_uri()
        self._folders: set[str] = set()  # folders known to exist, for put_file
        self._no_reflink = False  # a reflink failed here once: put_file copies

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, stream: BinaryIO, size: int) -> bool:
        """Store ``size`` bytes of ``stream`` under ``key`` unless it exists; see Backend.put."""
        final = self._path(key)
        reader = SizedReader(stream, size, key)
        if final.exists():
            return False
        folder = final.parent
        with self._errors():
            folder.mkdir(parents=True, exist_ok=True)
            temp = folder / f"{_TEMP_PREFIX}{final.name[:12]}-{secrets.token_hex(8)}"
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
            try:
                try:
                    while chunk := reader.read(CHUNK):
                        write_all(fd, chunk)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                created = _link_if_absent(temp, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)
            if created:
                fsync_dir(folder)
            return created

    def put_file(self, key: str, source: str, size: int,
                 copied: Callable[[int], None] | None = None) -> bool:
        """Store the local file ``source`` under ``key`` unless it exists; like :meth:`put`
        but not yet durable (call :meth:`sync` once after a batch).

        The bytes are reflinked where the filesystem shares blocks copy-on-write, else
        copied (``copied`` is told each chunk's bytes); never hard-linked. Returns True
        when stored, False when ``key`` existed.
        Raises SizeMismatch when ``source`` is not ``size`` bytes long; nothing is stored then.
        """
        final = os.path.join(self.root, check_key(key))
        with self._errors():
            st = os.stat(source)
            if st.st_size != size:
                raise SizeMismatch(key, size, str(st.st_size))
            folder = os.path.dirname(final)
            if folder not in self._folders:
                os.makedirs(folder, exist_ok=True)
                self._folders.add(folder)
            if os.path.exists(final):
                return False
            temp = f"{folder}/{_TEMP_PREFIX}{os.path.basename(final)[:12]}-{secrets.token_hex(8)}"
            try:
                if not self._cloned(source, temp):
                    with open(source, "rb") as src:
                        reader = SizedReader(src, size, key)
                        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                        try:
                            while chunk := reader.read(CHUNK):
                                write_all(fd, chunk)
                                if copied is not None:
                                    copied(len(chunk))
                        finally:
                            os.close(fd)
                return _link_if_absent(Path(temp), Path(final))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def _cloned(self, source: str, temp: str) -> bool:
        """Reflink ``source`` to the new read-only file ``temp``; False where this
        filesystem cannot (then it is not tried again)."""
        if self._no_reflink:
            return False
        try:
            reflink(source, temp)
        except LinkFailed:
            self._no_reflink = True
            return False
        os.chmod(temp, 0o444)
        return True

    def local_path(self, key: str) -> str:
        """Return the file that holds (or would hold) ``key``."""
        return os.path.join(self.root, check_key(key))

    def sync(self) -> None:
        """Make every object stored so far durable: one filesystem flush for a batch of
        :meth:`put_file` calls instead of one per object."""
        if self.root.is_dir():
            syncfs(self.root)

    def open(self, key: str) -> BinaryIO:
        """Return the file of ``key`` opened for reading; raises ObjectMissing."""
        path = self._path(key)
        try:
            return open(path, "rb")  # noqa: SIM115 - the caller closes the stream
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise ObjectMissing(key, self.url) from None
        except PermissionError as e:
            raise StorageDenied(self.url, f"{path}: {e.strerror}") from None

    def stat(self, key: str) -> int | None:
        """Return the size of ``key``, or None when absent."""
        try:
            info = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        return info.st_size

    def delete(self, key: str) -> None:
        """Remove ``key``; absent is fine."""
        with self._errors(), contextlib.suppress(FileNotFoundError, NotADirectoryError):
            os.unlink(self._path(key))

    def list(self, prefix: str = "") -> Iterator[str]:
        """Yield the keys starting with ``prefix``, sorted, without unfinished temp files."""
        start = self.root / prefix.rpartition("/")[0] if "/" in prefix else self.root
        for folder, dirs, files in os.walk(start):
            dirs.sort()
            rel = Path(folder).relative_to(self.root).as_posix()
            for name in sorted(files):
                if name.startswith(_TEMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    yield key

    def leftovers(self) -> Iterator[Leftover]:
        """Yield the temp files of writes that never finished (their process was killed
        between creating the temp file and linking it to its name)."""
        for folder, dirs, files in os.walk(self.root):
            dirs.sort()
            for name in sorted(files):
                if not name.startswith(_TEMP_PREFIX):
                    continue
                path = os.path.join(folder, name)
                try:
                    info = os.stat(path)
                except FileNotFoundError:  # its write just finished
                    continue
                rel = Path(path).relative_to(self.root).as_posix()
                yield Leftover(rel, info.st_size,
                               datetime.fromtimestamp(info.st_mtime, timezone.utc), rel)

    def remove_leftover(self, leftover: Leftover) -> None:
        """Remove a temp file :meth:`leftovers` found."""
        name = leftover.handle.rpartition("/")[2]
        if not name.startswith(_TEMP_PREFIX):
            raise BadInput(f"{leftover.handle} is not a temp file of this storage")
        self.delete(leftover.handle)

    def presign(
        self, key: str, method: str, expires: int, size: int | None = None
    ) -> wire.Action | None:
        """Return None: a file:// storage has no URLs of its own, the server streams."""
        check_key(key)
        check_method(method)
        return None

    # -- uploads in parts, written by the server (ama_remote.service.multipart) --

    min_part = 1  # any size: parts are files here, joined on completion

    def _part_prefix(self, key: str, upload_id: str) -> Path:
        final = self._path(key)
        check_upload_id(upload_id)
        # Temp files to list() and to fsck's leftovers alike.
        return final.parent / f"{_TEMP_PREFIX}part-{final.name}.{upload_id}."

    def open_upload(self, key: str) -> str:
        """Return the id of the unfinished upload of ``key`` (a part of it is stored),
        or a new one."""
        final = self._path(key)
        start = f"{_TEMP_PREFIX}part-{final.name}."
        with contextlib.suppress(FileNotFoundError):
            for name in sorted(os.listdir(final.parent)):
                pieces = name.split(".")
                if name.startswith(start) and len(pieces) == 4 and pieces[3].isdigit():
                    return pieces[2]
        return secrets.token_hex(16)

    def stored_parts(self, key: str, upload_id: str) -> dict[int, int]:
        """Return part number → size of the parts of the upload written whole."""
        prefix = self._part_prefix(key, upload_id)
        parts: dict[int, int] = {}
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(prefix.parent):
                if name.startswith(prefix.name) and name[len(prefix.name):].isdigit():
                    parts[int(name[len(prefix.name):])] = os.stat(prefix.parent / name).st_size
        return parts

    def presign_part(self, key: str, upload_id: str, number: int, size: int,
                     expires: int) -> wire.Action | None:
        """Return None: the server takes the parts itself (:meth:`put_part`)."""
        return None

    def put_part(self, key: str, upload_id: str, number: int, stream: BinaryIO,
                 size: int) -> None:
        """Write part ``number`` of the upload: exactly ``size`` bytes of ``stream``, made
        durable and then given its name, so a part cut off is never counted as stored."""
        prefix = self._part_prefix(key, upload_id)
        reader = SizedReader(stream, size, key)
        with self._errors():
            prefix.parent.mkdir(parents=True, exist_ok=True)
            temp = prefix.parent / f"{prefix.name}{number}-{secrets.token_hex(4)}"
            try:
                with open(temp, "wb") as f:
                    while chunk := reader.read(CHUNK):
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, f"{prefix}{number}")
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temp)

    def join_upload(self, key: str, upload_id: str) -> Joined:
        """Join the stored parts, in order, into a new file beside them that only this call
        writes (a temp file to :meth:`list` and :meth:`leftovers`), durable. Returns its
        key and its inode as its version. Raises ObjectMissing when no part is stored (the
        upload was completed, or aborted, by another request). A join of tens of gigabytes
        takes minutes: the server runs it after the completing request answered."""
        prefix = self._part_prefix(key, upload_id)
        parts = sorted(self.stored_parts(key, upload_id))
        if not parts:
            raise ObjectMissing(f"{key} (upload {upload_id})", self.url)
        joined = prefix.parent / f"{prefix.name}{_JOINED}{secrets.token_hex(8)}"
        with self._errors():
            try:
                with new_file(str(joined)):  # removed if the join fails
                    fd = os.open(joined, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o444)
                    try:
                        for number in parts:
                            # Touched: a part kept a day (a full disk, a client that came
                            # back late) is not fsck's leftover while it is joined, or after.
                            os.utime(f"{prefix}{number}")
                            with open(f"{prefix}{number}", "rb") as part:
                                while chunk := part.read(CHUNK):
                                    write_all(fd, chunk)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            except FileNotFoundError:  # its parts removed meanwhile: completed elsewhere
                raise ObjectMissing(f"{key} (upload {upload_id})", self.url) from None
            version = str(os.stat(joined).st_ino)
        return Joined(joined.relative_to(self.root).as_posix(), version)

    def publish_upload(self, key: str, upload_id: str, joined: Joined) -> bool:
        """Give the join that was hashed the object's key, create-only (a hard link, else a
        rename where the filesystem has none), and remove the join, and the parts of every
        upload of the object (held now, it takes no more). Returns True when stored, False
        when ``key`` existed already (its bytes are kept)."""
        source = self._path(joined.key)
        prefix = self._part_prefix(key, upload_id)
        if source.parent != prefix.parent or \
                not source.name.startswith(f"{prefix.name}{_JOINED}"):
            raise BadInput(f"{joined.key} is not a join of upload {upload_id} of {key}")
        final = self._path(key)
        with self._errors():
            if str(os.stat(source).st_ino) != joined.version:
                raise StorageUnreachable(self.url, f"the join of upload {upload_id} changed "
                                         "after it was hashed", "run the upload again")
            try:
                created = _link_if_absent(source, final)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(source)
            if created:
                fsync_dir(final.parent)
            self._remove_uploads(key)  # another client's upload of it too: not needed
            return created

    def abort_upload(self, key: str, upload_id: str) -> None:
        """Remove the parts of the upload, and its joins; none left is fine. A part still
        being written (a temp file of its own) is left to finish, and to fsck's grace."""
        self._part_prefix(key, upload_id)  # checks the id
        self._remove_uploads(key, upload_id)

    def _remove_uploads(self, key: str, upload_id: str | None = None) -> None:
        """Remove the parts and joins of upload ``upload_id`` of ``key`` (of every upload
        of it with None). A part still being written, a temp file of its own, is left."""
        final = self._path(key)
        start = f"{_TEMP_PREFIX}part-{final.name}."
        with contextlib.suppress(FileNotFoundError):
            for name in os.listdir(final.parent):
                if not name.startswith(start):
                    continue
                upload, _, tail = name[len(start):].partition(".")
                if (upload_id is None or upload == upload_id) and (
                        tail.isdigit() or tail.startswith(_JOINED)):
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(final.parent / name)

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except PermissionError as e:
            raise StorageDenied(self.url, f"{e.filename}: {e.strerror}") from None
        except (NotADirectoryError, FileExistsError) as e:
            raise StorageUnreachable(
                self.url, f"{e.filename} is not a directory", "point the storage at a folder"
            ) from None
        except OSError as e:
            if e.errno not in DISK_FULL:
                raise
            raise StorageFull(self.url, e.strerror or "no space left") from None


def _try_link(source: str | Path, final: str | Path) -> bool | None:
    """Hard-link ``source`` at ``final`` only if absent: True when linked, False when
    ``final`` existed, None when this filesystem has no hard links."""
    try:
        os.link(source, final)
        return True
    except FileExistsError:
        return False
    except OSError as e:
        if e.errno not in _NO_LINKS:
            raise
    return None


def _link_if_absent(temp: Path, final: Path) -> bool:
    linked = _try_link(temp, final)
    if linked is not None:
        return linked
    if final.exists():
        return False
    os.rename(temp, final)
    return True

