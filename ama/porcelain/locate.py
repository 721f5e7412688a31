"""Where a project's objects live (``ama list -l``, ``ama info --url``): the project's
storage URL, as its remote reports it, and each object's URL under the one key layout of
every storage, ``<storage>/objects/ab/cdef…`` (docs/design.md §4), or for an object stored
in a pack the pack's URL, ``<storage>/packs/ab/cdef…``, and the object's byte range in it
(ama-format(5) PACKS); or, asked for, a presigned URL that reads the object (or its pack)
without the storage's credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ama.plumbing import wire
from ama.plumbing.errors import AmaError
from ama.plumbing.index import path_key
from ama.porcelain.info import AssetRef, Remote, resolve_version


class StorageUnknown(AmaError):
    """A remote that does not say where its objects live (an ama-server older than this
    client)."""


def storage_of(remote: Remote) -> str:
    """The storage URL of ``remote``'s project. Raises :class:`StorageUnknown`, NotFound
    and the transport's errors."""
    storage = remote.transport.project(remote.project).get("storage")
    if not isinstance(storage, str) or not storage:
        raise StorageUnknown(f"the remote {remote.name} does not say where the objects of "
                             f"project {remote.project!r} live",
                             "upgrade its ama-server, which reports it since this version")
    return storage


def object_url(storage: str, oid: str, folder: str = "objects") -> str:
    """The URL of object ``oid`` (or with ``folder`` "packs", of pack ``oid``) in the
    storage at ``storage``."""
    return f"{storage.rstrip('/')}/{folder}/{oid[:2]}/{oid[2:]}"


@dataclass(frozen=True)
class FileLocation:
    """One file of a version: its path, object id and size, where its object lies (for a
    packed object its pack, and ``range``: the first and last byte of the object in it),
    and for a presigned URL how many seconds it stays valid (None: it does not expire)."""

    path: str
    id: str
    size: int
    url: str
    expires: int | None = None
    range: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "id": self.id, "size": self.size, "url": self.url,
                "expires": self.expires,
                "range": list(self.range) if self.range is not None else None}

    def to_text(self) -> str:
        """PATH, a tab, the URL; for a packed object a tab and ``bytes=FIRST-LAST``."""
        where = f"{self.path}\t{self.url}"
        return where if self.range is None else f"{where}\tbytes={self.range[0]}-{self.range[1]}"


def file_urls(remote: Remote, ref: AssetRef, odb: Any, presign: bool = False,
              parallelism: int = 8) -> list[FileLocation]:
    """Where each file of the version ``ref`` names (its latest without a version) lies,
    sorted by path: its storage URL, or with ``presign`` the URL a download negotiation
    gives (presigned by an S3 or GCS storage; a server on file:// storage answers its own
    object route, which needs the token; the embedded remote's storage is a local folder,
    whose file:// URL needs nothing). The manifest and trees the asset store lacks are
    fetched; no file bytes. Raises NotFound, :class:`StorageUnknown` and the transport's
    errors. A proxy file lies at its source: its URL is the source's, as it was added."""
    from ama.porcelain.download import version_files

    record = resolve_version(remote, ref)
    proxies: dict[str, Any] = {}
    files = version_files(odb, record["manifest"], remote.transport, remote.project,
                          parallelism, proxies)
    storage = storage_of(remote)
    found = {p: FileLocation(p, files[p].id, files[p].size, descriptor.url)
             for p, (_did, descriptor) in proxies.items()}
    files = {p: e for p, e in files.items() if p not in proxies}
    if not files:
        return [found[p] for p in sorted(found, key=path_key)]
    # A download negotiation says which objects lie in packs, and how to read each.
    unique = list(dict.fromkeys(e.id for e in files.values()))
    sizes = {e.id: e.size for e in files.values()}
    answer = remote.transport.batch(remote.project, "download",
                                    [{"id": oid, "size": sizes[oid]} for oid in unique])
    packs: dict[str, wire.PackDownload] = answer.get("packs") or {}
    where_of: dict[str, tuple[str, int | None, tuple[int, int] | None]] = {}
    for item in answer["objects"]:
        oid: str = item["id"]
        place = item.get("pack")
        if place is not None:
            span = (place["offset"], place["offset"] + place["length"] - 1)
            info = packs.get(place["id"])
            action = None if info is None else (info.get("actions") or {}).get("download")
            url, expires = object_url(storage, place["id"], "packs"), None
        else:
            span = None
            action = (item.get("actions") or {}).get("download")
            url, expires = object_url(storage, oid), None
        if presign and action and str(action.get("href", "")).startswith(("http://", "https://")):
            url, expires = str(action["href"]), int(action.get("expires") or 0) or None
        where_of[oid] = (url, expires, span)
    for p, e in files.items():
        url, expires, span = where_of.get(e.id, (object_url(storage, e.id), None, None))
        found[p] = FileLocation(p, e.id, e.size, url, expires, span)
    return [found[p] for p in sorted(found, key=path_key)]
