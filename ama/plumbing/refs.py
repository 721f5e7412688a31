"""Refs: names that point at object ids, moved only by compare-and-swap under a lock file.

A ref is a file ``<root>/<name>`` holding ``<id>\\n``, or ``ref: <other name>\\n`` for a
symbolic ref. An update takes ``<name>.lock`` (created exclusively, holding the writer's PID),
compares the current value with the expected old one, writes the new value into the lock file,
makes it durable and renames it over the ref. A lock left by a killed process is reported with
that process's PID and never broken silently.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.hashing import is_id
from ama.plumbing.odb import fsync_dir

ZERO_ID = "0" * 64
SYMREF_PREFIX = "ref: "
MAX_SYMREF_DEPTH = 5

_BAD_REF_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


class InvalidRefName(BadInput):
    """A ref name that breaks the naming rules."""


class RefConflict(AmaError):
    """The ref did not hold the expected old value: someone else moved it first."""


class RefLocked(AmaError):
    """Another process holds the ref's lock, or a killed one left it behind."""


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY = _Any()
"""Pass as ``old`` to update a ref whatever it holds (still under its lock)."""


def check_ref_name(name: str) -> str:
    """Return ``name`` if it is a valid ref name (git's check-ref-format rules)."""
    problem = None
    if not name or name.startswith("/") or name.endswith("/") or "//" in name:
        problem = "it must be non-empty components separated by single '/'"
    elif _BAD_REF_CHARS.search(name):
        problem = "it cannot contain spaces, control characters or any of ~ ^ : ? * [ \\"
    elif ".." in name or "@{" in name:
        problem = "it cannot contain '..' or '@{'"
    else:
        for part in name.split("/"):
            if part.startswith(".") or part.endswith(".lock") or part.endswith("."):
                problem = f"component {part!r} cannot start with '.' or end with '.' or '.lock'"
                break
    if problem:
        raise InvalidRefName(f"invalid ref name {name!r}: {problem}")
    return name


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (the holder of a lock file, say)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RefStore:
    """The refs below ``root``; ``names`` restricts which top-level names it holds."""

    def __init__(self, root: str | os.PathLike[str], prefix: str = "refs/") -> None:
        self.root = Path(root)
        self.prefix = prefix

    def _path(self, name: str) -> Path:
        check_ref_name(name)
        if not (name.startswith(self.prefix) or name == self.prefix.rstrip("/")):
            raise InvalidRefName(f"invalid ref name {name!r}: it must start with {self.prefix!r}")
        return self.root / name

    def read(self, name: str) -> str | None:
        """Return the raw value of ``name`` (an id or ``ref: <name>``), or None if unset."""
        try:
            value = self._path(name).read_text(encoding="utf-8").strip()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return value

    def iter(self) -> Iterator[tuple[str, str]]:
        """Yield ``(name, raw value)`` for every ref, sorted by name."""
        base = self.root / self.prefix.rstrip("/")
        found: list[tuple[str, str]] = []
        if base.is_file():
            found.append((self.prefix.rstrip("/"), base.read_text().strip()))
        elif base.is_dir():
            for dirpath, _dirs, files in os.walk(base):
                for fname in files:
                    if fname.endswith(".lock"):
                        continue
                    full = Path(dirpath) / fname
                    found.append((full.relative_to(self.root).as_posix(), full.read_text().strip()))
        return iter(sorted(found))

    def update(self, name: str, new: str, old: str | None | _Any) -> None:
        """Set ``name`` to ``new`` if it currently holds ``old``.

        ``old`` is the expected id, None (or the zero id) for "must not exist yet", or
        :data:`ANY`. ``new`` may be an id or ``ref: <name>``. Raises :class:`RefConflict`
        when the current value differs and :class:`RefLocked` when the lock is taken.
        """
        path = self._path(name)
        if not (is_id(new) or new.startswith(SYMREF_PREFIX)):
            raise BadInput(f"{new!r} is not an object id")
        if new.startswith(SYMREF_PREFIX):
            check_ref_name(new[len(SYMREF_PREFIX):])
        with self._locked(name, path):
            self._check_old(name, old)
            temp = f"{path}.{os.getpid()}.new.lock"  # ".lock": never a valid ref name
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, (new + "\n").encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temp, path)
            fsync_dir(path.parent)

    def delete(self, name: str, old: str | None | _Any) -> None:
        """Remove ``name`` if it currently holds ``old`` (see :meth:`update`)."""
        path = self._path(name)
        with self._locked(name, path):
            if self.read(name) is None:
                raise NotFound(f"ref {name} does not exist")
            self._check_old(name, old)
            path.unlink()
            fsync_dir(path.parent)

    def _check_old(self, name: str, old: str | None | _Any) -> None:
        if old is ANY:
            return
        current = self.read(name)
        expected = None if old in (None, ZERO_ID) else old
        if current != expected:
            want = "not to exist" if expected is None else f"to be {expected}"
            have = "it does not exist" if current is None else f"it is {current}"
            raise RefConflict(
                f"ref {name} was expected {want}, but {have}",
                "someone else moved it: read it again and retry with its current value",
            )

    @contextlib.contextmanager
    def _locked(self, name: str, path: Path) -> Iterator[None]:
        """Hold ``<name>.lock`` (holding this process's PID) for the duration."""
        lock = str(path) + ".lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            raise self._lock_error(name, lock) from None
        try:
            os.write(fd, f"{os.getpid()}\n".encode())
        finally:
            os.close(fd)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock)

    @staticmethod
    def _lock_error(name: str, lock: str) -> RefLocked:
        try:
            text = Path(lock).read_text().strip()
        except OSError:
            text = ""
        pid = int(text) if text.isdigit() else None
        if pid is not None and pid_alive(pid):
            return RefLocked(
                f"ref {name} is locked by running process {pid} ({lock})",
                "wait for that process to finish, then retry",
            )
        who = f"process {pid}, which is no longer running" if pid else "a process that died"
        return RefLocked(
            f"ref {name} has a stale lock left by {who} ({lock})",
            f"make sure no ama command is running, then remove {lock}",
        )
