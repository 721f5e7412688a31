"""Finding versions on the remote (``ama find``): by asset hash, by alias, by the content of
one file, and the size of a version before cloning it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from ama.plumbing import wire
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.hashing import check_id, hash_file
from ama.plumbing.objects import check_class_name
from ama.porcelain.alias import check_alias
from ama.porcelain.info import AssetRef, Remote, resolve_version


def _cls(cls: str | None) -> str | None:
    return None if cls is None else check_class_name(cls)


def find_hash(remote: Remote, hash: str, cls: str | None = None) -> list[wire.FoundVersion]:
    """Return the versions whose asset hash (root tree id) is ``hash``, oldest first."""
    check_id(hash, "asset hash")
    return remote.transport.find(remote.project, hash=hash, cls=_cls(cls))


def find_alias(remote: Remote, alias: str, cls: str | None = None
               ) -> list[wire.FoundVersion]:
    """Return the latest version of each asset named ``alias`` (one per class)."""
    check_alias(alias)
    return remote.transport.find(remote.project, alias=alias, cls=_cls(cls))


@dataclass(frozen=True)
class FileMatches:
    """The versions holding a file's exact content: the file's blob id, and each version
    (a record of the remote) with the ``paths`` where the content appears in it."""

    path: str
    blob: str
    size: int
    versions: list[wire.FoundVersion]

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "blob": self.blob, "size": self.size,
                "versions": self.versions}


def find_file(remote: Remote, path: str | os.PathLike[str],
              cls: str | None = None) -> FileMatches:
    """Hash the file at ``path`` and return the versions that contain that content.
    Raises NotFound (no such file) or BadInput (not a regular file)."""
    file = Path(path)
    if not file.exists():
        raise NotFound(f"{path} does not exist", "give the path of a file to look for")
    if not file.is_file():
        raise BadInput(f"{path} is not a regular file", "give the path of one file")
    size = file.stat().st_size
    blob = hash_file(file, size)
    versions = remote.transport.find(remote.project, blob=blob, cls=_cls(cls))
    return FileMatches(str(path), blob, size, versions)


class VersionBytes(TypedDict):
    """A version, and the bytes and number of files a clone of it transfers at most."""

    name: str
    version: str
    manifest: str
    bytes: int
    files: int


def find_size(remote: Remote, ref: AssetRef) -> VersionBytes:
    """Return ``{"name","version","manifest","bytes","files"}`` of the version ``ref``
    names (its latest without a version): what a clone would transfer at most."""
    version = resolve_version(remote, ref)
    size = remote.transport.version_size(remote.project, ref.cls, ref.asset,
                                         version["version"])
    return {"name": version["name"], "version": version["version"],
            "manifest": version["manifest"], "bytes": int(size["bytes"]),
            "files": int(size["files"])}
