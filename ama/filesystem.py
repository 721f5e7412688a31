"""The ``ama://`` fsspec filesystem: versions of assets as read-only folders, for pandas,
pyarrow, and anything else that opens fsspec URLs.

URLs name a version, then a path in it::

    ama://ml-models/17/data/train.csv            the latest version of ml-models/17
    ama://ml-models/17@0.0.3/data/train.csv      version 0.0.3
    ama://ml-models/resnet-best/data/train.csv   an alias in its class, like an ordinal
    ama://alias:resnet-best@0.0.3/data/…         an alias looked up in every class

``ls``, ``info``, ``open``, ``cat``, ``glob``, ``walk`` and ``find`` work; writing does not.
A file is read through :class:`ama.api.Version`: opening it fetches the object into the
asset store, verified against its id before any byte is returned, unless the file is large
(``whole_below`` bytes, 64 MiB by default) and not in the store yet: then it is read in
ranges from the remote, and only a read of the whole file from its start (``read()``) is
fetched and verified first. See :mod:`ama.api` for what a ranged read checks.

Which version "latest" is, is looked up once per filesystem instance (fsspec caches
instances): ``fs.invalidate_cache()`` looks again. Storage options: ``remote``, ``token``,
``project``, ``home`` as for :class:`ama.api.Client`.
"""

from __future__ import annotations

import threading
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from ama.api import Client, Version
from ama.plumbing.errors import BadInput, NotFound

WHOLE_BELOW = 64 << 20


class AmaFileSystem(AbstractFileSystem):  # type: ignore[misc]
    """Read-only fsspec filesystem over versions of assets (protocol ``ama``)."""

    protocol = "ama"
    root_marker = ""

    def __init__(self, remote: str | None = None, token: str | None = None,
                 project: str | None = None, home: str | None = None,
                 whole_below: int = WHOLE_BELOW, client: Client | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.client = client or Client(remote=remote, token=token, project=project, home=home)
        self.whole_below = whole_below
        self._versions: dict[str, Version] = {}
        self._lock = threading.Lock()

    # -- names --

    def _split(self, path: str) -> tuple[Version, str]:
        """The version a path names and the path inside it."""
        path = self._strip_protocol(path)
        parts = path.split("/")
        if parts[0].startswith("alias:"):
            key, rest = parts[0], parts[1:]
        else:
            if len(parts) < 2 or not parts[1]:
                raise NotFound(f"ama://{path} names no asset: use ama://CLASS/ASSET[@VERSION]/PATH")
            key, rest = f"{parts[0]}/{parts[1]}", parts[2:]
        with self._lock:
            found = self._versions.get(key)
        if found is None:
            found = self._resolve(key)
            with self._lock:
                self._versions[key] = found
        return found, "/".join(p for p in rest if p)

    def _resolve(self, key: str) -> Version:
        name, _, version = key.partition("@")
        if name.startswith("alias:"):
            alias = name[len("alias:"):]
            hits = self.client.find(alias=alias)
            if not hits:
                raise NotFound(f"no asset is named {alias!r}",
                               "list aliases with 'ama find --alias NAME'")
            if len(hits) > 1:
                classes = ", ".join(h.name for h in hits)
                raise BadInput(f"the alias {alias!r} names an asset in several classes "
                               f"({classes})", "name it as ama://CLASS/ALIAS/… instead")
            name = hits[0].name
        return self.client.version(name, version or None)

    @classmethod
    def _strip_protocol(cls, path: Any) -> str:
        if isinstance(path, list):
            return [cls._strip_protocol(p) for p in path]  # type: ignore[return-value]
        text = str(path)
        if text.startswith("ama://"):
            text = text[len("ama://"):]
        elif text.startswith("ama::"):
            text = text[len("ama::"):]
        return text.strip("/")

    def invalidate_cache(self, path: str | None = None) -> None:
        with self._lock:
            self._versions.clear()
        super().invalidate_cache(path)

    # -- reading --

    def _entry(self, base: str, e: Any) -> dict[str, Any]:
        return {"name": f"{base}/{e.path}" if e.path else base, "size": e.size,
                "type": e.kind, "id": e.id}

    def _base(self, path: str, inner: str) -> str:
        stripped = self._strip_protocol(path)
        return stripped[: len(stripped) - len(inner)].rstrip("/") if inner else stripped

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        version, inner = self._split(path)
        base = self._base(path, inner)
        entry = version.entry(inner)
        if entry.kind == "file":
            entries = [self._entry(base, entry)]
        else:
            entries = [self._entry(base, e) for e in version.listdir(inner)]
        return entries if detail else [e["name"] for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        version, inner = self._split(path)
        try:
            return self._entry(self._base(path, inner), version.entry(inner))
        except NotFound:
            raise FileNotFoundError(path) from None

    def exists(self, path: str, **kwargs: Any) -> bool:
        try:
            self.info(path)
        except (FileNotFoundError, NotFound):
            return False
        return True

    def cat_file(self, path: str, start: int | None = None, end: int | None = None,
                 **kwargs: Any) -> bytes:
        version, inner = self._split(path)
        if start is None and end is None:
            return version.read_bytes(inner)
        size = version.entry(inner).size
        begin = 0 if start is None else (start if start >= 0 else max(0, size + start))
        stop = size if end is None else (end if end >= 0 else max(0, size + end))
        return version.read_range(inner, begin, max(0, stop - begin))

    def _open(self, path: str, mode: str = "rb", block_size: int | None = None,
              autocommit: bool = True, cache_options: Any = None, **kwargs: Any) -> Any:
        if mode != "rb":
            raise PermissionError(f"ama:// is read-only: cannot open {path} with mode {mode!r}")
        version, inner = self._split(path)
        entry = version.entry(inner)
        if entry.kind != "file":
            raise IsADirectoryError(path)
        odb = self.client.store.objects
        if entry.size < self.whole_below or odb.has(entry.id):
            return version.open(inner)
        return AmaFile(self, path, version, inner, entry.size, block_size=block_size,
                       cache_options=cache_options)


class AmaFile(AbstractBufferedFile):  # type: ignore[misc]
    """A large file read in ranges from the remote; ``read()`` of all of it from the start
    fetches the object whole through the store instead, verified."""

    def __init__(self, fs: AmaFileSystem, path: str, version: Version, inner: str,
                 size: int, **kwargs: Any) -> None:
        self.version, self.inner = version, inner
        super().__init__(fs, path, mode="rb", size=size, **kwargs)

    def _fetch_range(self, start: int, end: int) -> bytes:
        data: bytes = self.version.read_range(self.inner, start, end - start)
        return data

    def read(self, length: int = -1) -> bytes:
        if (length is None or length < 0) and self.tell() == 0:
            data = self.version.read_bytes(self.inner)
            self.loc = len(data)
            return data
        result: bytes = super().read(length)
        return result
