"""Named remotes (``ama remote add|list|remove|default``) and opening one (:func:`open_remote`).

Remotes are kept in ``$AMA_HOME/config`` as git keeps them, one section per name::

    [remote "team"]
    url = https://ama.example.org

The remote ``local`` always exists: the embedded ``file://`` remote at ``$AMA_HOME/remote``,
whose project ``default`` is made on first use. It is the default until ``ama remote
default NAME`` (or ``AMA_REMOTE``) names another, so a newcomer needs no server and no login.

:func:`open_remote` returns a :class:`~ama.plumbing.transport.Transport`: HTTP for
``http(s)://`` URLs (with the stored token), and for ``file://`` an
:class:`InProcessTransport` over the remote's service layer. This module is the only
client code that imports ``ama_remote`` (docs/design.md §5), and only for ``file://``.
"""

from __future__ import annotations

import configparser
import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, unquote, urlsplit

from ama.plumbing import wire
from ama.plumbing.durable import write_at
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.hashing import CHUNK, hash_bytes
from ama.plumbing.objects import CLASS_NAME_RE
from ama.plumbing.odb import CorruptObject, FileObjectDatabase
from ama.plumbing.transport import (
    ANY_TARGET,
    MAX_UNSIZED,
    HttpTransport,
    RemoteError,
    Transport,
    _AnyTarget,
)
from ama.porcelain.config import CONFIG_FILE, LOCAL_REMOTE, Config

if TYPE_CHECKING:  # the remote loads when a file:// remote is first used, not with this module
    from ama_remote.service import Caller, Service

LOCAL_DIR = "remote"
# Objects received from a file:// remote: a few threads, this many objects per task.
_WORKERS = 4
_CHUNK = 256


def _runs(items: list[wire.ObjectFile], limit: int = 8 << 20) -> Iterator[list[wire.ObjectFile]]:
    """Split ``items`` of an ``object_files`` answer (packed ones sorted by pack and offset)
    into runs of packed objects that lie end to end in one pack, up to ``limit`` bytes, and
    single other items."""
    run: list[wire.ObjectFile] = []
    end = start = 0
    path = None
    for item in items:
        where = item.get("pack")
        if run and (where is None or where["path"] != path or where["offset"] != end
                    or end + where["length"] - start > limit):
            yield run
            run = []
        if where is None:
            yield [item]
            continue
        if not run:
            path, start = where["path"], where["offset"]
        run.append(item)
        end = where["offset"] + where["length"]
    if run:
        yield run


class UnknownRemote(NotFound):
    """A remote name that is not configured."""


class RemoteExists(AmaError):
    """``ama remote add`` of a name that is taken."""


@dataclass(frozen=True)
class RemoteInfo:
    """A remote: its name, URL, the project commands work in, and whether it is the default."""

    name: str
    url: str
    project: str
    default: bool = False

    @property
    def kind(self) -> str:
        return "file" if self.url.startswith("file://") else "http"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "project": self.project,
                "default": self.default, "kind": self.kind}


# -- the list of remotes ----------------------------------------------------------------------


def _section(name: str) -> str:
    return f'remote "{name}"'


def _read(config: Config) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    with contextlib.suppress(FileNotFoundError):
        parser.read_string(config.path.read_text(encoding="utf-8"), str(config.path))
    return parser


def _write(config: Config, parser: configparser.ConfigParser) -> None:
    out = io.StringIO()
    parser.write(out)
    config.home.mkdir(parents=True, exist_ok=True)
    temp = config.path.with_name(f"{CONFIG_FILE}.{os.getpid()}.tmp")
    temp.write_text(out.getvalue(), encoding="utf-8")
    os.replace(temp, config.path)


def local_url(config: Config) -> str:
    """The URL of the embedded remote: ``file://$AMA_HOME/remote``."""
    return (config.home / LOCAL_DIR).absolute().as_uri()


def check_remote_name(name: str) -> str:
    if not CLASS_NAME_RE.match(name):
        raise BadInput(f"invalid remote name {name!r}: use 1 to 63 of a-z, 0-9, '.', '_', '-', "
                       "starting with a letter or digit")
    return name


def check_url(url: str) -> str:
    """Return ``url`` without a trailing slash if it is http(s)://host[:port] or file:///path."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "file" and parts.path.startswith("/") and parts.netloc in ("", "localhost"):
        return "file://" + parts.path.rstrip("/")
    raise BadInput(f"invalid remote URL {url!r}",
                   "use https://HOST[:PORT] for an ama server or file:///PATH for a folder")


def _urls(config: Config) -> dict[str, str]:
    parser = _read(config)
    urls = {LOCAL_REMOTE: local_url(config)}
    for section in parser.sections():
        if section.startswith('remote "') and section.endswith('"'):
            url = parser.get(section, "url", fallback="")
            if url:
                urls[section[8:-1]] = url
    return urls


def list_remotes(config: Config) -> list[RemoteInfo]:
    """Return every remote, ``local`` first, then by name."""
    default = config.get("remote.default")
    project = config.get("project.active")
    urls = _urls(config)
    names = [LOCAL_REMOTE] + sorted(n for n in urls if n != LOCAL_REMOTE)
    return [RemoteInfo(n, urls[n], project, n == default) for n in names]


def add(config: Config, name: str, url: str) -> RemoteInfo:
    """Add the remote ``name`` at ``url``; raises :class:`RemoteExists` or BadInput.

    The first remote added besides the built-in ``local``, while no default was ever
    chosen, becomes the default: someone adding a team server means to use it (the result's
    ``default`` says so)."""
    check_remote_name(name)
    url = check_url(url)
    known = _urls(config)
    if name in known:
        raise RemoteExists(f"remote {name!r} already exists",
                           f"remove it first with 'ama remote remove {name}'")
    parser = _read(config)
    parser.add_section(_section(name))
    parser.set(_section(name), "url", url)
    _write(config, parser)
    fresh = Config(config.home, config.environ)  # `config` may predate a default just set
    if set(known) <= {LOCAL_REMOTE} and fresh.stored("remote.default") is None:
        return set_default(config, name)
    return RemoteInfo(name, url, config.get("project.active"),
                      config.get("remote.default") == name)


def remove(config: Config, name: str) -> RemoteInfo:
    """Forget the remote ``name`` (``local`` cannot be removed); if it was the default,
    ``local`` becomes the default again. Returns what was removed."""
    info = get(config, name)
    if name == LOCAL_REMOTE:
        raise BadInput("the remote 'local' is built in and cannot be removed",
                       "make another remote the default: ama remote default NAME")
    parser = _read(config)
    parser.remove_section(_section(name))
    _write(config, parser)
    if config.stored("remote.default") == name:
        Config(config.home, config.environ).unset("remote.default")
    return info


def set_default(config: Config, name: str) -> RemoteInfo:
    """Make ``name`` the remote commands use when none is named."""
    get(config, name)
    Config(config.home, config.environ).set("remote.default", name)
    return get(Config(config.home, config.environ), name)


def get(config: Config, name: str | None = None) -> RemoteInfo:
    """Return the remote ``name`` (default: the configured default).

    ``name`` may also be a URL (``AMA_REMOTE=https://…``): it is then the configured remote
    with that URL, or an unnamed one called ``url-<hash>``. Raises :class:`UnknownRemote`.
    """
    name = name or config.get("remote.default")
    urls = _urls(config)
    project = config.get("project.active")
    default = config.get("remote.default")
    if "://" in name:
        url = check_url(name)
        for known, known_url in urls.items():
            if known_url == url:
                return RemoteInfo(known, url, project, known == default)
        short = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
        return RemoteInfo(f"url-{short}", url, project, True)
    if name.startswith("url-") and name not in urls and "://" in default:
        # The name an unnamed URL got (above), as an asset directory's HEAD records it:
        # the URL is still the default when AMA_REMOTE names it.
        url = check_url(default)
        if hashlib.sha256(url.encode("utf-8")).hexdigest()[:12] == name[4:]:
            return RemoteInfo(name, url, project, True)
    if name not in urls:
        listed = ", ".join(sorted(urls))
        raise UnknownRemote(f"unknown remote {name!r} (known: {listed})",
                            f"add it with 'ama remote add {name} URL'")
    return RemoteInfo(name, urls[name], project, name == default)


# -- opening a remote ---------------------------------------------------------------------------


def open_remote(config: Config, name: str | None = None,
                project: str | None = None) -> tuple[Transport, RemoteInfo]:
    """Return a transport to the remote ``name`` (default: the default remote) and its info.

    ``project`` overrides the active project in the returned info. Raises
    :class:`UnknownRemote`; reaching the remote can raise the transport's errors later.
    """
    info = get(config, name)
    if project:
        info = RemoteInfo(info.name, info.url, project, info.default)
    if info.kind == "file":
        return InProcessTransport.open(info.url), info
    from ama.porcelain.auth import current_token

    timeout = float(config.get("transfer.timeout"))
    transport = HttpTransport(info.url, token=current_token(info.url, config.environ),
                              address=config.get("server.ip") or None, environ=config.environ,
                              timeout=(min(10.0, timeout), timeout),
                              pool_size=max(10, int(config.get("transfer.parallelism"))))
    return transport, info


def file_path(url: str) -> Path:
    return Path(unquote(urlsplit(url).path))


# The embedded remotes this process opened, by URL: their service and local admin caller.
_OPENED: dict[str, tuple[Service, Caller]] = {}


class InProcessTransport:
    """The :class:`Transport` to an embedded ``file://`` remote: the service layer called in
    this process as its local admin user (a folder needs no login)."""

    def __init__(self, url: str, service: Service | None = None,
                 caller: Caller | None = None) -> None:
        self.url = url
        self._opened = (service, caller) if service is not None and caller is not None \
            else None

    @classmethod
    def open(cls, url: str) -> InProcessTransport:
        """Return the transport to the embedded remote at the ``file://`` ``url``; the remote
        is opened (and created on first use) by the first call that needs it, so a command
        that finds everything in the store never loads the database."""
        return cls(url)

    def _open(self) -> tuple[Service, Caller]:
        if self._opened is None:
            opened = _OPENED.get(self.url)
            if opened is None:
                from ama_remote.embedded import open_embedded

                opened = _OPENED[self.url] = open_embedded(file_path(self.url))
            self._opened = opened
        return self._opened

    @property
    def service(self) -> Service:
        return self._open()[0]

    @property
    def caller(self) -> Caller:
        return self._open()[1]

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        function = getattr(self.service, method)
        return function(self.caller, *args, **kwargs)

    def _no_login(self) -> AmaError:
        return BadInput(f"{self.url} is a local remote: it needs no login")

    # -- auth --
    def signup(self, username: str, email: str) -> wire.User:
        raise self._no_login()

    def rotate_token(self) -> str:
        raise self._no_login()

    def revoke_token(self) -> None:
        raise self._no_login()

    def me(self) -> wire.Me:
        result: wire.Me = self._call("me")
        return result

    # -- projects, classes, assets --
    def projects(self) -> list[wire.ProjectRole]:
        result: list[wire.ProjectRole] = self._call("list_projects")
        return result

    def project(self, project: str) -> wire.Project:
        result: wire.Project = self._call("get_project", project)
        return result

    def create_project(self, name: str) -> wire.StoredProject:
        """Create the project ``name`` with its objects beside the remote's database, and
        make the local user its admin (only a ``file://`` remote can do this from here)."""
        storage = (file_path(self.url) / f"storage-{name}").as_uri()
        result: wire.StoredProject = self.service.create_project(name, storage)
        self.service.grant(name, self.caller.username, "admin")
        return result

    def classes(self, project: str) -> list[wire.AssetClass]:
        result: list[wire.AssetClass] = self._call("list_classes", project)
        return result

    def get_class(self, project: str, name: str) -> wire.AssetClass:
        result: wire.AssetClass = self._call("get_class", project, name)
        return result

    def put_class(self, project: str, name: str, description: str = "",
                  schema: wire.JSONSchema | None = None, rules: wire.ClassRules | None = None,
                  visualisation: Any = None) -> wire.AssetClass:
        result: wire.AssetClass = self._call("put_class", project, name, description, schema,
                                            rules, visualisation)
        return result

    def assets(self, project: str, cls: str,
               deleted: bool = False) -> Iterator[wire.AssetRecord]:
        page: int | None = 1
        while page is not None:
            answer: wire.AssetPage = self._call("list_assets", project, cls, page=page,
                                                deleted=deleted)
            yield from answer["items"]
            page = answer.get("next_page")

    def asset(self, project: str, cls: str, name: str) -> wire.AssetRecord:
        result: wire.AssetRecord = self._call("get_asset", project, cls, name)
        return result

    def update_asset(self, project: str, cls: str, name: str, title: str | None = None,
                     description: str | None = None, tags: list[str] | None = None,
                     status: str | None = None) -> wire.AssetRecord:
        result: wire.AssetRecord = self._call("update_asset", project, cls, name, title=title,
                                              description=description, tags=tags, status=status)
        return result

    def delete_asset(self, project: str, cls: str, name: str,
                     restore: bool = False) -> wire.AssetRecord:
        result: wire.AssetRecord = self._call("delete_asset", project, cls, name,
                                              restore=restore)
        return result

    def versions(self, project: str, cls: str, asset: str) -> list[wire.Version]:
        result: list[wire.Version] = self._call("list_versions", project, cls, asset)
        return result

    def version_size(self, project: str, cls: str, asset: str, version: str) -> wire.VersionSize:
        result: wire.VersionSize = self._call("version_size", project, cls, asset, version)
        return result

    def commit(self, project: str, cls: str, asset: int | None, parent: str | None,
               manifest: str, idempotency_key: str, bump: str = "patch") -> wire.Version:
        result: wire.Version = self._call("commit", project, cls, asset, parent, manifest,
                                            idempotency_key, bump)
        return result

    def put_alias(self, project: str, cls: str, alias: str, asset: int,
                  expected: int | None | _AnyTarget = ANY_TARGET) -> wire.AliasRecord:
        result: wire.AliasRecord = (
            self._call("put_alias", project, cls, alias, asset)
            if isinstance(expected, _AnyTarget)
            else self._call("put_alias", project, cls, alias, asset, expected))
        return result

    def delete_alias(self, project: str, cls: str, alias: str) -> None:
        self._call("delete_alias", project, cls, alias)

    # -- finding and lineage --
    def find(self, project: str, hash: str | None = None, alias: str | None = None,
             cls: str | None = None, blob: str | None = None) -> list[wire.FoundVersion]:
        result: list[wire.FoundVersion] = self._call("find", project, hash=hash, alias=alias,
                                                  cls=cls, blob=blob)
        return result

    def inputs(self, project: str, manifest: str) -> list[wire.Input]:
        result: list[wire.Input] = self._call("inputs", project, manifest)
        return result

    def dependents(self, project: str, manifest: str) -> list[wire.Dependent]:
        result: list[wire.Dependent] = self._call("dependents", project, manifest)
        return result

    # -- administration: the local user is this remote's server admin --
    def users(self) -> list[wire.AdminUser]:
        result: list[wire.AdminUser] = self._call("users")
        return result

    def set_user_active(self, username: str, active: bool) -> wire.User:
        result: wire.User = self._call("set_user_active", username, active)
        return result

    def members(self, project: str) -> list[wire.Member]:
        result: list[wire.Member] = self._call("members", project)
        return result

    def set_role(self, project: str, username: str, role: str) -> wire.Role:
        result: wire.Role = self._call("set_role", project, username, role)
        return result

    def remove_member(self, project: str, username: str) -> None:
        self._call("remove_member", project, username)

    def tokens(self) -> list[wire.TokenInfo]:
        result: list[wire.TokenInfo] = self._call("tokens")  # none: a folder needs no login
        return result

    def revoke_token_id(self, token_id: int) -> None:
        self._call("revoke_token_id", token_id)

    def audit(self, user: str | None = None, project: str | None = None,
              action: str | None = None, since: str | None = None,
              until: str | None = None) -> Iterator[wire.AuditEntry]:
        from ama_remote.service.admin import parse_moment

        page: int | None = 1
        while page is not None:
            answer: wire.AuditPage = self._call("audit", user=user, project=project, action=action,
                                since=parse_moment(since, "since"),
                                until=parse_moment(until, "until"), page=page)
            yield from answer["items"]
            page = answer.get("next_page")

    # -- objects --
    def batch(self, project: str, operation: str, objects: list[wire.ObjectRequest],
              packs: bool = False) -> wire.Negotiation:
        result: wire.Negotiation = self._call("batch", project, operation, objects,
                                              packs=packs)  # the full answer: not compact
        return result

    def verify(self, project: str, ids: list[str]) -> wire.Verification:
        result: wire.Verification = self._call("verify_objects", project, ids)
        return result

    def send_pack(self, project: str, name: str, path: str | os.PathLike[str],
                  size: int) -> wire.PackAnswer:
        """Store the pack file at ``path`` in the remote, which checks it whole."""
        result: wire.PackAnswer = self._call("put_pack_file", project, name, os.fspath(path),
                                             size)
        return result

    def send_files(self, project: str, files: list[tuple[str, int, str]],
                   progress: Callable[[int], None] | None = None,
                   on_bytes: Callable[[int], None] | None = None) -> wire.StoredFiles:
        """Store local files in the remote in one operation (see LocalTransfer)."""
        result: wire.StoredFiles = self._call("put_object_files", project, files, progress,
                                            on_bytes)
        return result

    def receive_files(self, project: str, objects: list[tuple[str, int]],
                      odb: FileObjectDatabase,
                      progress: Callable[[int], None] | None = None,
                      on_bytes: Callable[[int], None] | None = None) -> int:
        """Reflink or copy objects from the remote's storage into ``odb``, re-hashing each,
        a few threads at a time; objects the storage keeps elsewhere are streamed. Call
        inside ``odb.batch()``, with objects that the store was seen to lack in it: they
        become durable and visible when it ends."""
        answer: wire.ObjectFiles = self._call("object_files", project,
                                              [oid for oid, _ in objects])
        missing = [item for item in answer["objects"] if "error" in item]
        if missing:
            raise NotFound(f"object {missing[0]['id']} is not on the remote {self.url} "
                           f"(project {project}): {missing[0]['error'].get('message')}",
                           "ask whoever uploaded it to upload it again, or run "
                           "'ama-server fsck' on the server")
        # Packed objects are read from their pack files in order, one open file per run.
        def place(item: wire.ObjectFile) -> tuple[str, int]:
            where = item.get("pack")
            return (where["path"], where["offset"]) if where else ("", 0)

        items = sorted(answer["objects"], key=place)
        chunks = [items[i:i + _CHUNK] for i in range(0, len(items), _CHUNK)]

        def receive_chunk(chunk: list[wire.ObjectFile]) -> int:
            added = 0
            packs: dict[str, BinaryIO] = {}
            try:
                for run in _runs(chunk):
                    if len(run) > 1:
                        added += self._receive_run(run, odb, packs)
                    else:
                        added += self._receive_one(project, run[0], odb, packs, on_bytes)
            finally:
                for f in packs.values():
                    f.close()
            return added

        done = count = 0
        with ThreadPoolExecutor(max_workers=_WORKERS) as pool:
            futures = [pool.submit(receive_chunk, c) for c in chunks]
            try:
                for chunk, future in zip(chunks, futures, strict=True):
                    count += future.result()
                    done += len(chunk)
                    if progress is not None:
                        progress(done)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return count

    @staticmethod
    def _receive_run(run: list[wire.ObjectFile], odb: FileObjectDatabase,
                     packs: dict[str, BinaryIO]) -> int:
        """Bring in objects that lie end to end in one pack file (see :func:`_runs`): one
        read for all, each hashed against its id before it enters the store."""
        places = [item["pack"] for item in run]  # runs are made of packed objects only
        first, last = places[0], places[-1]
        assert first is not None and last is not None
        path = first["path"]
        f = packs.get(path)
        if f is None:
            f = packs[path] = open(path, "rb")
        f.seek(first["offset"])
        data = memoryview(f.read(last["offset"] + last["length"] - first["offset"]))
        added = at = 0
        for item, where in zip(run, places, strict=True):
            assert where is not None
            length = where["length"]
            piece = data[at:at + length]
            at += length
            actual = hash_bytes(piece)
            if actual != item["id"] or len(piece) != length:
                raise CorruptObject(item["id"], path, actual)
            # Listed as lacking by this very batch (download's _lacking): no look again.
            added += odb.write_hashed(actual, piece, lacking=True)
        return added

    def _receive_one(self, project: str, item: wire.ObjectFile, odb: FileObjectDatabase,
                     packs: dict[str, BinaryIO],
                     on_bytes: Callable[[int], None] | None = None) -> int:
        """Bring one object of an ``object_files`` answer into ``odb``; 1 when added."""
        where = item.get("pack")
        if where is not None:
            # A range of a pack file: hashed against its id before it enters the store.
            f = packs.get(where["path"])
            if f is None:
                f = packs[where["path"]] = open(where["path"], "rb")
            f.seek(where["offset"])
            data = f.read(where["length"])
            actual = hash_bytes(data)
            if actual != item["id"]:
                raise CorruptObject(item["id"], where["path"], actual)
            return int(odb.write_hashed(actual, data))
        if item["path"] is not None:
            return int(odb.write_link(item["path"], item["id"], item["size"],
                                      on_bytes=on_bytes))
        return self._stream_in(project, item["id"], item["size"], odb, on_bytes)

    def _stream_in(self, project: str, oid: str, size: int, odb: FileObjectDatabase,
                   on_bytes: Callable[[int], None] | None = None) -> int:
        temp = odb.root.parent / "incoming" / f"{oid[:16]}.{os.getpid()}.{threading.get_ident()}"
        temp.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.download({"href": f"/v1/projects/{quote(project, safe='')}/objects/{oid}"},
                          oid, temp, on_bytes, size=size)
            before = odb.has(oid)
            odb.write_file(temp)
            return int(not before)
        finally:
            temp.unlink(missing_ok=True)

    @staticmethod
    def _target(action: Mapping[str, Any]) -> tuple[str, str]:
        """The project and id an action's own href (``/v1/projects/P/objects/ID``, or
        ``…/packs/ID`` for a pack) names."""
        parts = urlsplit(str(action.get("href", ""))).path.strip("/").split("/")
        if len(parts) != 5 or parts[:1] != ["v1"] or parts[1] != "projects" \
                or parts[3] not in ("objects", "packs"):
            raise BadInput(f"transfer href {action.get('href')!r} is not this remote's own")
        return unquote(parts[2]), parts[4]

    def upload(self, action: Mapping[str, Any], path: str | os.PathLike[str],
               on_bytes: Callable[[int], None] | None = None) -> None:
        from ama.plumbing.multipart import Window

        project, oid = self._target(action)
        size = os.stat(path).st_size
        with open(path, "rb") as f:
            self._call("put_object", project, oid,
                       f if on_bytes is None else Window(f, 0, size, on_bytes), size)

    def download(self, action: Mapping[str, Any], oid: str, path: str | os.PathLike[str],
                 on_bytes: Callable[[int], None] | None = None, size: int = MAX_UNSIZED
                 ) -> int:
        from blake3 import blake3

        project, _ = self._target(action)
        stream, _size = self._call("open_object", project, oid)
        hasher = blake3()
        total = 0
        try:
            with open(path, "wb") as f:
                while True:
                    chunk = stream.read(CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > size:
                        raise RemoteError(f"the remote at {self.url} holds more than the "
                                          f"{size} bytes of object {oid}")
                    hasher.update(chunk)
                    f.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        actual = hasher.hexdigest()
        if actual != oid:
            Path(path).unlink(missing_ok=True)
            raise CorruptObject(oid, self.url, actual)
        return total


    def read_range(self, action: Mapping[str, Any], oid: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes of object ``oid`` from ``start``, not hashed (the
        remote's storage verified the object when it was stored)."""
        return b"".join(self._range(action, oid, start, length))

    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None:
        """Write the bytes :meth:`read_range` would return into the open file ``fd`` at
        offset ``start``, chunk by chunk (``written`` is told the length of each)."""
        write_at(fd, self._range(action, oid, start, length), start, written)

    def _range(self, action: Mapping[str, Any], oid: str, start: int,
               length: int) -> Iterator[bytes]:
        project, _ = self._target(action)
        packed = "/packs/" in str(action.get("href", ""))
        stream, size = self._call("open_pack" if packed else "open_object", project, oid)
        try:
            if start + length > size:
                raise BadInput(f"bytes {start}-{start + length - 1} are beyond the end of "
                               f"object {oid} ({size} bytes)")
            # The remote's stream seeks on file:// storage; on others, read up to the range.
            if getattr(stream, "seekable", lambda: False)():
                stream.seek(start)
            else:
                skip = start
                while skip and (chunk := stream.read(min(skip, CHUNK))):
                    skip -= len(chunk)
            given = 0
            while given < length and (chunk := stream.read(min(CHUNK, length - given))):
                given += len(chunk)
                yield chunk
            if given != length:
                raise CorruptObject(oid, f"{self.url} (bytes {start}-{start + length - 1}: "
                                    f"{given} of them stored)", "")
        finally:
            stream.close()


__all__ = ["InProcessTransport", "RemoteExists", "RemoteInfo", "UnknownRemote", "add",
           "check_url", "get", "list_remotes", "local_url", "open_remote", "remove",
           "set_default"]
