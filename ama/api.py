"""The Python API: versions of assets read file by file, and asset directories made and
uploaded, from a notebook or a training script (``import ama``).

This is a thin, stable layer over the porcelain, which stays the implementation (the CLI
calls the porcelain, not this). A :class:`Client` holds what the CLI takes from its
environment: the asset store (``AMA_HOME``), the remote (``AMA_REMOTE``), its token
(``AMA_TOKEN``) and the project (``AMA_PROJECT``); given none, it reads the same
configuration as the CLI. The functions of the module (:func:`version`, :func:`create`,
:func:`find`, :func:`assets`, …) use one default client.

Reading a version never clones it. Its manifest and the trees along a path are fetched into
the asset store, never the file bytes of other paths; :meth:`Version.open` fetches the one
object it opens. What is verified:

- A whole-file read (:meth:`Version.open`, :meth:`Version.read_bytes`, ``fsspec``'s
  ``cat`` or a ``read()`` of a whole file) goes through the asset store: the object is
  hashed (BLAKE3) as it arrives and before it enters the store, so no byte of a file whose
  content is not its id is ever returned. Objects already in the store were verified the
  same way when they entered.
- A ranged read (:meth:`Version.read_range`) of an object that is not in the store asks the
  remote for those bytes only (an HTTP ``Range`` request). Those bytes are NOT hashed: one
  cannot check part of a BLAKE3 hash without the rest of the file. What is checked is that
  the remote answered exactly the bytes asked for (status, ``Content-Range`` and length);
  the remote itself only serves objects it verified when they were uploaded.

Errors are the :class:`~ama.plumbing.errors.AmaError` subclasses the CLI maps to exit codes
(``exit_code`` on each): :class:`NotFound` (3), :class:`BadInput` (2),
:class:`Unauthenticated`/:class:`Forbidden` (4), :class:`Unreachable` (5), and the others
(1). Nothing here prints; progress goes to an optional callback ``progress(done, total)``,
or to a ``tqdm.auto`` bar when running in a notebook with ``tqdm`` installed.

Reads are thread-safe: one client may be shared by threads (a ``DataLoader``'s workers);
fetches into the store are serialised per client, reads of the store are not.
"""

from __future__ import annotations

import fnmatch
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.jsontext import Metadata
from ama.plumbing.objects import Manifest

Progress = Callable[[int, int], None]


class IsADirectory(BadInput):
    """A path of a version that is a folder where a file was expected."""


@dataclass(frozen=True)
class File:
    """One file of a version: its path from the asset root, size in bytes, and id (the
    BLAKE3 hash of its bytes, what ``b3sum`` prints)."""

    path: str
    size: int
    id: str
    executable: bool = False


@dataclass(frozen=True)
class Entry:
    """One entry of a folder of a version: ``kind`` is ``"file"`` or ``"directory"``;
    ``size`` of a folder is the total bytes of the files below it."""

    path: str
    kind: str
    size: int
    id: str


def _in_notebook() -> bool:
    shell = sys.modules.get("IPython")
    if shell is None or "ipykernel" not in sys.modules:
        return False
    ip = shell.get_ipython()  # type: ignore[attr-defined]
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


class _Bar:
    """A ``progress(done, total[, bytes…][, phase=NAME])`` callback drawing a ``tqdm.auto``
    bar with the steps the CLI's bar shows: each step (``phase``) names itself after
    ``what`` and counts from its own total; a step with no total (a wait, or files still
    being counted) shows its count, if any, and its elapsed time."""

    def __init__(self, what: str, file: Any = None) -> None:
        import tqdm.auto  # noqa: F401 - ImportError now, not at the first call

        self.what = what
        self.file = file  # tqdm's default (stderr) unless given
        self.phase: str | None = None
        self.bar: Any = None

    def _open(self, total: int | None) -> Any:
        from tqdm.auto import tqdm

        desc = self.what if self.phase is None else f"{self.what}: {self.phase}"
        return tqdm(desc=desc, total=total, unit="obj", leave=False, file=self.file)

    def __call__(self, done: int, total: int, *_bytes: int, phase: str | None = None) -> None:
        if self.bar is None or phase != self.phase:
            # A new step (or the first): a bar of its own, with its name and clock.
            if self.bar is not None:
                self.bar.close()
            self.phase = phase
            self.bar = self._open(total or None)
        elif not total and self.bar.total:
            self.bar.total = None  # counting again, as clone does before its placing
        if not total:
            self.bar.n = done
            self.bar.refresh()
            return
        if done == self.bar.n and total == self.bar.total and done < total:
            return  # bytes of a large object moved; the bar counts objects
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()
        if done >= total:
            self.bar.close()
            self.bar = None


class Client:
    """A connection to a remote, with the asset store on this machine.

    ``remote`` is a configured remote's name or a URL (``https://…``, ``file:///…``);
    ``token`` a token for it; ``project`` the project; ``home`` the asset store. Each
    defaults to the CLI's configuration (``AMA_REMOTE``, ``AMA_TOKEN``, ``AMA_PROJECT``,
    ``AMA_HOME``, then ``$AMA_HOME/config``). ``progress`` receives ``(done, total)`` of
    transfers; without it, a notebook shows a ``tqdm`` bar when ``tqdm`` is installed.
    """

    def __init__(self, remote: str | None = None, token: str | None = None,
                 project: str | None = None, home: str | os.PathLike[str] | None = None,
                 progress: Progress | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        for name, value in (("AMA_REMOTE", remote), ("AMA_TOKEN", token),
                            ("AMA_PROJECT", project),
                            ("AMA_HOME", None if home is None else os.fspath(home))):
            if value is not None:
                env[name] = value
        self.environ: dict[str, str] = env
        self.progress = progress
        self._lock = threading.RLock()
        self._remote: Any = None
        self._store: Any = None
        #: Objects brought from the remote into the store by this client, and how many of
        #: them were file bytes (blobs): what reading without cloning costs.
        self.objects_fetched = 0
        self.blobs_fetched = 0

    # -- plumbing of the client itself --

    def _progress(self, what: str) -> Progress | None:
        if self.progress is not None:
            user = self.progress
            # The porcelain may add (done_bytes, total_bytes); the API promises (done, total).
            # So may a step's name (phase=…), which the API does not pass on either.
            return lambda done, total, *_bytes, **_phase: user(done, total)
        if _in_notebook():
            try:
                return _Bar(what)
            except ImportError:
                return None
        return None

    @property
    def config(self) -> Any:
        from ama.porcelain.config import Config

        return Config.open(self.environ)

    @property
    def remote(self) -> Any:
        """The porcelain's :class:`~ama.porcelain.info.Remote`: transport and project."""
        with self._lock:
            if self._remote is None:
                from ama.porcelain.info import connect

                self._remote = connect(self.config)
            return self._remote

    @property
    def store(self) -> Any:
        with self._lock:
            if self._store is None:
                from ama.plumbing.store import Store

                self._store = Store.open(self.environ)
            return self._store

    def _fetch(self, objects: list[tuple[str, int]], blobs: bool = False) -> int:
        """Bring ``objects`` (id, size) the store lacks into it, each verified on entry."""
        odb = self.store.objects
        if all(odb.has(oid) for oid, _ in objects):
            return 0
        from ama.porcelain.download import receive

        with self._lock:
            remote = self.remote
            count = receive(remote.transport, remote.project, odb, objects,
                            int(self.config.get("transfer.parallelism")),
                            self._progress("fetching") if blobs else None)
            self.objects_fetched += count
            if blobs:
                self.blobs_fetched += count
        return count

    # -- the API --

    def version(self, name: str, version: str | None = None) -> Version:
        """Return the version ``name`` names: ``class/ordinal`` or ``class/alias`` (its
        latest version), or with ``/version``. Raises :class:`BadInput` (a malformed
        name) or :class:`NotFound` (no such asset or version)."""
        from ama.porcelain.info import AssetRef, parse_name, resolve_version

        ref = parse_name(name)
        if version is not None:
            if ref.version is not None and ref.version != version:
                raise BadInput(f"{name} names version {ref.version}, but version {version} "
                               "was asked for too")
            ref = AssetRef(ref.cls, ref.asset, version)
        return Version(self, resolve_version(self.remote, ref))

    def find(self, *, alias: str | None = None, file: str | os.PathLike[str] | None = None,
             hash: str | None = None, cls: str | None = None) -> list[Version]:
        """Return the versions found by exactly one of: ``alias`` (the latest version of
        each asset so named), ``file`` (a path on this machine, or a blob id: the versions
        holding that content) or ``hash`` (an asset hash, the id of a root tree); ``cls``
        narrows the search to one class. Raises :class:`BadInput`."""
        from ama.plumbing.hashing import is_id
        from ama.porcelain import find as finder

        if sum(x is not None for x in (alias, file, hash)) != 1:
            raise BadInput("find needs exactly one of alias=, file= or hash=")
        remote = self.remote
        if alias is not None:
            records = finder.find_alias(remote, alias, cls)
        elif hash is not None:
            records = finder.find_hash(remote, hash, cls)
        elif isinstance(file, str) and is_id(file) and not os.path.exists(file):
            records = remote.transport.find(remote.project, blob=file, cls=cls)
        else:
            assert file is not None
            records = finder.find_file(remote, file, cls).versions
        return [self._record_version(r) for r in records]

    def _record_version(self, record: Mapping[str, Any]) -> Version:
        if "manifest" in record and "version" in record and "tree" in record:
            return Version(self, dict(record))
        return self.version(f"{record['name']}/{record['version']}")

    def assets(self, cls: str) -> list[Any]:
        """Return the assets of class ``cls`` (:class:`~ama.porcelain.list.AssetSummary`:
        name, ordinal, aliases, title, tags, latest version). Raises :class:`NotFound`."""
        from ama.porcelain.list import list_assets

        return list_assets(self.remote, cls)

    def create_class(self, name: str, description: str = "") -> None:
        """Create the class ``name`` on the remote and on this machine (``ama class
        init``). Raises :class:`~ama.porcelain.classes.ClassExists`."""
        from ama.porcelain.classes import LocalClasses, init_class, remote_publisher

        config = self.config
        init_class(LocalClasses.open(self.environ), name, description,
                   publish=remote_publisher(config))

    def create(self, cls: str, path: str | os.PathLike[str], add: bool = True) -> LocalAsset:
        """Make ``path`` an asset directory of class ``cls`` (``ama init``) and, with
        ``add``, stage every file in it (``ama add .``). A class this machine does not know
        yet is fetched from the remote. Raises
        :class:`~ama.porcelain.classes.UnknownClass` and the errors of ``ama init``."""
        from ama.porcelain.classes import LocalClasses
        from ama.porcelain.init import init

        if cls not in LocalClasses.open(self.environ).names():
            from ama.porcelain.fetch import fetch_classes

            fetch_classes(self.config)
        init(path, cls, self.environ)
        asset = LocalAsset(self, path)
        if add and any(p.name != ".ama" for p in Path(path).iterdir()):
            asset.add(".")
        return asset

    def open_dir(self, path: str | os.PathLike[str] = ".") -> LocalAsset:
        """Return the asset directory holding ``path``. Raises ``NotAnAssetDir``."""
        return LocalAsset(self, path)


class Version:
    """One uploaded version of an asset, read from its remote without cloning it.

    Attributes: ``name`` (``class/ordinal``), ``version`` (``0.0.3``), ``manifest`` (its
    id), ``tree_id`` (the asset hash), ``created`` (ISO 8601 UTC), ``author``, ``message``,
    ``metadata``, ``inputs`` (``class/ordinal/version`` names) and ``size`` (bytes of all
    its files)."""

    def __init__(self, client: Client, record: Mapping[str, Any]) -> None:
        self.client = client
        self.record = dict(record)
        self.name: str = f"{record['class']}/{record['ordinal']}"
        self.version: str = str(record["version"])
        self.manifest: str = str(record["manifest"])
        self.tree_id: str = str(record["tree"])
        self._manifest: Manifest | None = None
        self._size: int | None = None

    def __repr__(self) -> str:
        return f"<ama.Version {self.name}/{self.version}>"

    def _read_manifest(self) -> Manifest:
        if self._manifest is None:
            from ama.plumbing.graph import read_manifest

            self.client._fetch([(self.manifest, 0)])
            self._manifest = read_manifest(self.client.store.objects, self.manifest)
        return self._manifest

    @property
    def created(self) -> str:
        return self._read_manifest().created

    @property
    def message(self) -> str:
        return self._read_manifest().message

    @property
    def author(self) -> dict[str, str]:
        return self._read_manifest().author.to_json()

    @property
    def metadata(self) -> Metadata:
        return dict(self._read_manifest().metadata)

    @property
    def inputs(self) -> list[str]:
        return [i.name for i in self._read_manifest().inputs]

    @property
    def size(self) -> int:
        if self._size is None:
            self._size = sum(e[2] for e in self._entries(self.tree_id))
        return self._size

    def _entries(self, tree: str) -> list[tuple[str, str, int, str]]:
        from ama.plumbing.graph import tree_entries

        self.client._fetch([(tree, 0)])
        return tree_entries(self.client.store.objects, tree)

    def _lookup(self, path: str) -> tuple[str, str, int]:
        """(kind, id, size) of ``path``; fetches only the trees along it."""
        kind, oid, size = "tree", self.tree_id, -1
        walked = ""
        for part in [p for p in path.strip("/").split("/") if p not in ("", ".")]:
            if kind != "tree":
                raise NotFound(f"{walked} is a file in {self}: {path} does not exist")
            for k, o, s, n in self._entries(oid):
                if n == part:
                    kind, oid, size = k, o, s
                    break
            else:
                raise NotFound(f"{path} does not exist in {self.name}/{self.version}",
                               f"list its files with 'ama ls-tree -r' or "
                               f"ama.version({self.name!r}).files()")
            walked = f"{walked}/{part}" if walked else part
        if size < 0:
            size = self.size
        return kind, oid, size

    def entry(self, path: str) -> Entry:
        """Return what is at ``path`` (a file or a folder). Raises :class:`NotFound`."""
        kind, oid, size = self._lookup(path)
        return Entry(path.strip("/"), "directory" if kind == "tree" else "file", size, oid)

    def listdir(self, path: str = "") -> list[Entry]:
        """Return the entries of the folder ``path`` (default: the root), by name.
        Raises :class:`NotFound`, or :class:`BadInput` when ``path`` is a file."""
        kind, oid, _ = self._lookup(path)
        if kind == "tree":
            prefix = path.strip("/")
            prefix = prefix + "/" if prefix else ""
            return [Entry(prefix + n, "directory" if k == "tree" else "file", s, o)
                    for k, o, s, n in self._entries(oid)]
        raise BadInput(f"{path} is a file of {self.name}/{self.version}, not a folder")

    def files(self, pattern: str | None = None) -> Iterator[File]:
        """Yield the files of the version (those matching the glob ``pattern``, on the
        path from the asset root; ``*`` matches across ``/``), by path. Fetches trees,
        never file bytes."""
        from ama.plumbing.index import MODE_EXEC
        from ama.porcelain.download import version_files

        with self.client._lock:
            remote = self.client.remote
            # A proxy file is listed with the id of its bytes, which stay at its source.
            files = version_files(self.client.store.objects, self.manifest,
                                  remote.transport, remote.project, proxies={})
        for path in sorted(files):
            if pattern is None or fnmatch.fnmatchcase(path, pattern):
                e = files[path]
                yield File(path, e.size, e.id, e.mode == MODE_EXEC)

    def _blob(self, path: str) -> tuple[str, int]:
        kind, oid, size = self._lookup(path)
        if kind == "tree":
            raise IsADirectory(f"{path} is a folder of {self.name}/{self.version}",
                               "open one of its files; list them with .files()")
        if kind == "proxy":
            return self._proxied(path, oid, size), size
        return oid, size

    def _proxied(self, path: str, descriptor_id: str, size: int) -> str:
        """The id of the proxy file ``path``'s bytes (``size`` by its tree entry), fetched
        from its source into the asset store (verified) when it lacks them."""
        from ama.plumbing.proxy import file_descriptor
        from ama.porcelain.sources import fetch_proxy

        self.client._fetch([(descriptor_id, 0)])
        odb = self.client.store.objects
        descriptor = file_descriptor(odb.get(descriptor_id), path, size)
        if not odb.has(descriptor.id):
            fetch_proxy(odb, path, descriptor)
        return descriptor.id

    def local_path(self, path: str) -> Path:
        """Fetch the file ``path`` into the asset store (verified) and return the path
        of the read-only store object holding its bytes."""
        oid, size = self._blob(path)
        self.client._fetch([(oid, size)], blobs=True)
        return Path(self.client.store.objects.path(oid))

    def open(self, path: str) -> BinaryIO:
        """Open the file ``path`` for reading bytes; it is fetched into the asset store
        first when missing, and verified before any byte is returned. Raises
        :class:`NotFound` and :class:`IsADirectory`."""
        return open(self.local_path(path), "rb")  # noqa: SIM115 - the caller closes it

    def read_bytes(self, path: str) -> bytes:
        """Return the whole file ``path``, verified (see :meth:`open`)."""
        with self.open(path) as f:
            return f.read()

    def read_range(self, path: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes of the file ``path`` from ``start`` (fewer at its end).

        From the asset store when the object is there (verified when it entered);
        otherwise only these bytes are asked of the remote and they are NOT hashed (see
        the module's documentation for what is checked). Raises :class:`NotFound`."""
        if start < 0 or length < 0:
            raise BadInput("a range needs a start and a length that are not negative")
        oid, size = self._blob(path)
        end = min(size, start + length)
        if start >= end:
            return b""
        odb = self.client.store.objects
        if odb.has(oid):
            with open(odb.path(oid), "rb") as f:
                f.seek(start)
                return f.read(end - start)
        remote = self.client.remote
        answer = remote.transport.batch(remote.project, "download",
                                        [{"id": oid, "size": size}])
        item = answer["objects"][0]
        if "error" in item:
            raise NotFound(f"object {oid} of {path} is not on the remote "
                           f"{remote.transport.url}: {item['error'].get('message')}")
        where = item.get("pack")
        if where is not None:
            # A small object in a pack: its whole range, checked against its id.
            from blake3 import blake3

            from ama.plumbing.odb import CorruptObject
            from ama.porcelain.download import checked_member

            packs = answer.get("packs") or {}
            member = checked_member(remote.transport, oid, size, where, packs)
            pack_action = packs[where["id"]]["actions"]["download"]
            whole: bytes = remote.transport.read_range(pack_action, where["id"],
                                                       member.offset, member.length)
            if (actual := blake3(whole).hexdigest()) != oid:
                raise CorruptObject(oid, remote.transport.url, actual)
            return whole[start:end]
        action = (item.get("actions") or {}).get("download")
        data: bytes = remote.transport.read_range(action, oid, start, end - start)
        return data

    def checkout(self, directory: str | os.PathLike[str], soft: bool = False) -> LocalAsset:
        """Clone this version into ``directory`` (``ama clone``) and return it; ``soft``
        leaves the file bytes out. Raises ``DestinationTaken``."""
        from ama.porcelain.clone import clone

        clone(f"{self.name}/{self.version}", Path(directory), soft=soft,
              environ=self.client.environ, progress=self.client._progress("checkout"))
        return LocalAsset(self.client, directory)

    def __str__(self) -> str:
        return f"{self.name}/{self.version}"


@dataclass
class LocalAsset:
    """An asset directory on this machine: stage files and upload them as a version."""

    client: Client
    path: str | os.PathLike[str]

    def _open(self) -> Any:
        from ama.porcelain.asset import Asset

        return Asset.open(self.path, self.client.environ)

    @property
    def root(self) -> Path:
        return Path(self._open().root)

    def add(self, *paths: str | os.PathLike[str]) -> list[str]:
        """Stage ``paths`` (relative to the asset root; ``"."``: everything) as ``ama add``
        does; return the paths staged as new or changed."""
        from ama.porcelain.add import add

        asset = self._open()
        staged = add(asset, [os.fspath(p) for p in paths], cwd=asset.root,
                     progress=self.client._progress("adding"))
        return [*staged.new, *staged.modified]

    def upload(self, message: str, metadata: Mapping[str, Any] | None = None,
               bump: str = "patch") -> Version:
        """Upload the staged files as the next version (``ama upload``) and return it.
        Raises ``NothingStaged``, ``ParentMoved``, ``RulesBroken`` and the remote's
        errors."""
        from ama.porcelain.upload import upload

        asset = self._open()
        result = upload(asset, message, metadata=None if metadata is None else dict(metadata),
                        bump=bump, progress=self.client._progress("uploading"))
        head = self._open().head
        return self.client.version(f"{head.class_name}/{head.asset}/{result.version}")


_DEFAULT: tuple[tuple[str | None, ...], Client] | None = None
_DEFAULT_LOCK = threading.Lock()
_SETTINGS = ("HOME", "AMA_HOME", "AMA_REMOTE", "AMA_TOKEN", "AMA_PROJECT")


def client() -> Client:
    """The default client, configured like the CLI: made on first use, and again when the
    environment names another store, remote, token or project (a notebook that sets
    ``os.environ["AMA_REMOTE"]`` after a first call)."""
    global _DEFAULT
    key = tuple(os.environ.get(name) for name in _SETTINGS)
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT[0] != key:
            _DEFAULT = (key, Client())
        return _DEFAULT[1]


def version(name: str, version: str | None = None) -> Version:
    """:meth:`Client.version` of the default client."""
    return client().version(name, version)


def find(*, alias: str | None = None, file: str | os.PathLike[str] | None = None,
         hash: str | None = None, cls: str | None = None) -> list[Version]:
    """:meth:`Client.find` of the default client."""
    return client().find(alias=alias, file=file, hash=hash, cls=cls)


def assets(cls: str) -> list[Any]:
    """:meth:`Client.assets` of the default client."""
    return client().assets(cls)


def create(cls: str, path: str | os.PathLike[str], add: bool = True) -> LocalAsset:
    """:meth:`Client.create` of the default client."""
    return client().create(cls, path, add)


def create_class(name: str, description: str = "") -> None:
    """:meth:`Client.create_class` of the default client."""
    client().create_class(name, description)


def open_dir(path: str | os.PathLike[str] = ".") -> LocalAsset:
    """:meth:`Client.open_dir` of the default client."""
    return client().open_dir(path)


__all__ = ["AmaError", "Client", "Entry", "File", "IsADirectory", "LocalAsset", "Version",
           "assets", "client", "create", "create_class", "find", "open_dir", "version"]
