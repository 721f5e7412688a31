"""``ama cp SRC DEST``: copy files between asset versions and local paths, by object id.

An *address* names files of an asset: ``CLASS/ASSET[/VERSION]:PATH``, ASSET an ordinal or an
alias, VERSION the latest when left out, PATH a file or folder from the asset's root. Any
other argument is a local path (write ``./a:b`` for a local name holding a colon).

- version → local: the objects the asset store lacks are fetched from the remote, checked,
  and the files written at DEST.
- local or version → asset (``CLASS/ASSET:PATH``, no version): a new version of that asset
  is committed on the remote, made from its latest version with the files copied in. Its
  files are named by id: only objects the remote lacks are sent, so a copy between two
  assets of one remote sends no file bytes, only the new trees and manifest.

As cp(1): a DEST that ends with ``/`` (or an empty asset path, or an existing local folder)
receives the source under its own name; any other DEST is the new name of the source.
Both sides are on one remote and project: the default one, or the one asked for.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from ama.plumbing import wire
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.hashing import hash_file
from ama.plumbing.index import IndexEntry, mode_of, path_key
from ama.plumbing.objects import CLASS_NAME_RE, Input, Manifest, check_paths
from ama.plumbing.odb import CorruptObject
from ama.porcelain.info import AssetRef, Remote, parse_name, resolve_version

# CLASS/ASSET[/VERSION]:PATH; a local path never starts like this unless written ./…
_ADDRESS = re.compile(r"(?P<name>[a-z0-9][a-z0-9._-]{0,62}/[^/:]+(?:/[^/:]+)?):(?P<path>.*)\Z")


@dataclass(frozen=True)
class Address:
    """Files of an asset version (``version`` None: the latest) below ``path``."""

    ref: AssetRef
    path: str

    def __str__(self) -> str:
        return f"{self.ref}:{self.path}"


def parse_address(text: str) -> Address | None:
    """The asset address ``text`` names, or None for a local path. Raises BadInput for an
    address whose name or path is malformed."""
    found = _ADDRESS.match(text)
    if found is None or not CLASS_NAME_RE.match(found["name"].split("/")[0]):
        return None
    ref = parse_name(found["name"])
    path = found["path"].strip("/")
    if path:
        check_paths([path], f"the address {text!r}")
    return Address(ref, path + ("/" if found["path"].endswith("/") and path else ""))


@dataclass
class CopyResult:
    """What a copy did: the files written (local paths or paths in the asset), the version
    it made (a copy into an asset), and the objects received and sent."""

    files: list[str] = field(default_factory=list)
    version: wire.Version | None = None
    received: int = 0
    sent: int = 0
    bytes_sent: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"files": self.files, "version": self.version, "received": self.received,
                "sent": self.sent, "bytes_sent": self.bytes_sent}


def _dest_path(base: str, dest: str, into: bool) -> str:
    """Where the source's ``base`` name lands: inside ``dest`` or as ``dest``."""
    if not into:
        return dest.rstrip("/") or dest
    folder = dest.rstrip("/")
    return f"{folder}/{base}" if folder else (f"/{base}" if dest.startswith("/") else base)


def _version_source(remote: Remote, odb: Any, src: Address, parallelism: int
                    ) -> tuple[wire.Version, dict[str, IndexEntry], str]:
    """The version ``src`` names, its files below src.path (path relative to the source's
    own name → entry), and that name."""
    from ama.porcelain.download import version_files

    record = resolve_version(remote, src.ref)
    files = version_files(odb, record["manifest"], remote.transport, remote.project,
                          parallelism)
    path = src.path.rstrip("/")
    if not path:
        raise BadInput(f"{src} names no file: give a path after the colon",
                       f"for example {src.ref}:data/train.csv")
    chosen: dict[str, IndexEntry] = {}
    if path in files:
        chosen[""] = files[path]
    else:
        chosen = {p[len(path) + 1:]: e for p, e in files.items() if p.startswith(path + "/")}
    if not chosen:
        raise NotFound(f"{record['name']}/{record['version']} has no file or folder {path}",
                       f"list its files with 'ama clone {record['name']}/{record['version']}'"
                       " or 'ama find --size'")
    return record, chosen, PurePosixPath(path).name


def _local_source(odb: Any, src: str) -> tuple[dict[str, IndexEntry], str]:
    """The regular files at or below the local path ``src`` (relative path → entry, their
    objects written to the asset store) and its name."""
    root = Path(src)
    if root.is_symlink() or root.is_file():
        if not root.is_file() or root.is_symlink():
            raise BadInput(f"{src} is a symbolic link: ama cp copies regular files")
        oid = odb.write_file(root)
        return {"": _entry("", oid, root)}, root.name
    if not root.is_dir():
        raise NotFound(f"{src} does not exist", "check the path")
    chosen: dict[str, IndexEntry] = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink() or not path.is_file():
                raise BadInput(f"{path} is not a regular file: ama cp copies regular files")
            chosen[rel] = _entry(rel, odb.write_file(path), path)
    if not chosen:
        raise NotFound(f"{src} holds no file to copy")
    return chosen, root.resolve().name


def _entry(path: str, oid: str, file: Path) -> IndexEntry:
    kind = "exec" if os.access(file, os.X_OK) else "blob"
    return IndexEntry(path, oid, file.stat().st_size, 0, 0, mode_of(kind))


def _join(base: str, rel: str) -> str:
    return f"{base}/{rel}" if rel else base


def copy(remote: Remote, odb: Any, src: str, dest: str, *, message: str | None = None,
         author: Any = None, now: datetime | None = None, parallelism: int = 8) -> CopyResult:
    """Copy ``src`` to ``dest`` (see the module docstring); ``odb`` is the asset store's
    object database. Returns what was written.

    Raises BadInput (a malformed address, a copy between two local paths, a version as
    destination), NotFound (no such asset, version or file), :class:`CorruptObject`, and
    the transport's errors (Conflict when the destination asset moved on meanwhile).
    """
    from ama.porcelain.download import receive

    source, target = parse_address(src), parse_address(dest)
    if source is None and target is None:
        raise BadInput(f"neither {src!r} nor {dest!r} is an asset address",
                       "copy local files with cp(1); name asset files as "
                       "CLASS/ASSET[/VERSION]:PATH")
    result = CopyResult()
    origin: wire.Version | None = None
    with odb.batch():
        if source is not None:
            origin, files, base = _version_source(remote, odb, source, parallelism)
        else:
            files, base = _local_source(odb, src)
    if target is None:
        assert source is not None
        into = dest.endswith("/") or Path(dest).is_dir()
        out = Path(_dest_path(base, dest, into))
        with odb.batch():
            result.received = receive(remote.transport, remote.project, odb,
                                      [(e.id, e.size) for e in files.values()], parallelism)
        for rel, entry in sorted(files.items(), key=lambda kv: path_key(kv[0])):
            where = out / rel if rel else out
            _place(odb, entry, where)
            result.files.append(str(where))
        return result
    if target.ref.version is not None:
        raise BadInput(f"{dest} names version {target.ref.version}: versions never change",
                       f"copy into the asset, {target.ref.cls}/{target.ref.asset}:"
                       f"{target.path}, which makes its next version")
    into = target.path == "" or target.path.endswith("/")
    at = _dest_path(base, target.path, into)
    return _commit_copy(remote, odb, source, origin, target, files, at, result,
                        message or f"ama cp {src} {dest}", author, now, parallelism)


def _commit_copy(remote: Remote, odb: Any, source: Address | None,
                 origin: wire.Version | None, target: Address,
                 files: dict[str, IndexEntry], at: str, result: CopyResult, message: str,
                 author: Any, now: datetime | None, parallelism: int) -> CopyResult:
    """Commit the next version of ``target``'s asset: its latest files, and ``files``
    placed at ``at`` (replacing what was there)."""
    import secrets

    from ama.plumbing.graph import read_manifest, write_tree
    from ama.porcelain.download import version_files
    from ama.porcelain.upload import _to_send, send

    latest = resolve_version(remote, AssetRef(target.ref.cls, target.ref.asset))
    with odb.batch():
        entries = version_files(odb, latest["manifest"], remote.transport, remote.project,
                                parallelism)
        placed = {_join(at, rel): e._replace(path=_join(at, rel)) for rel, e in files.items()}
        for path in placed:
            # What stands in the way goes: a file where a folder comes, files below a file.
            for old in [p for p in entries if p == path or p.startswith(path + "/")
                        or path.startswith(p + "/")]:
                del entries[old]
        entries.update(placed)
        check_paths(entries, f"the copy into {target.ref}")
        tree = write_tree(odb, entries.values())
        parent = read_manifest(odb, latest["manifest"])
        inputs = list(parent.inputs)
        if origin is not None and origin["name"] != latest["name"] and \
                all(i.manifest != origin["manifest"] for i in inputs):
            inputs.append(Input(origin["manifest"], f"{origin['name']}/{origin['version']}",
                                "copied from"))
        manifest = Manifest.create(tree, author, now or datetime.now(timezone.utc), message,
                                   parents=[latest["manifest"]], inputs=inputs,
                                   metadata=dict(parent.metadata))
        manifest_id = odb.write(manifest.serialize())
    trees, blobs = _to_send(odb, tree, parent.tree)
    objects = [(manifest_id, odb.size(manifest_id)), *[(t, odb.size(t)) for t in trees]]
    # Blobs of a version source are in the project already (the remote answers "present");
    # only the bytes of local files can need sending.
    objects += [(oid, size) for oid, size in blobs if odb.has(oid)]
    result.sent, result.bytes_sent = send(remote.transport, remote.project, odb, objects,
                                          parallelism)
    result.version = remote.transport.commit(
        remote.project, target.ref.cls, int(latest["ordinal"]), latest["manifest"],
        manifest_id, secrets.token_hex(16))
    result.files = sorted(placed, key=path_key)
    return result


def _place(odb: Any, entry: IndexEntry, where: Path) -> None:
    """Write the object of ``entry`` at ``where`` (replacing a file there), through a
    temporary file beside it, checking that the bytes written hash to the id."""
    where.parent.mkdir(parents=True, exist_ok=True)
    if where.is_dir() and not where.is_symlink():
        raise BadInput(f"{where} is a folder: a file cannot replace it",
                       "copy into it by ending the destination with /")
    temp = where.parent / f".ama-tmp-{os.urandom(8).hex()}"
    try:
        if entry.is_link:
            os.symlink(odb.get(entry.id).decode("utf-8"), temp)
        else:
            shutil.copyfile(odb.path(entry.id), temp)
            actual = hash_file(temp)
            if actual != entry.id:
                raise CorruptObject(entry.id, str(odb.path(entry.id)), actual)
            os.chmod(temp, 0o755 if entry.executable else 0o644)
        os.replace(temp, where)
    finally:
        if temp.is_symlink() or temp.exists():
            temp.unlink()
