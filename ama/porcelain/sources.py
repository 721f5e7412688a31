"""``ama add URL…``: files staged straight from a bucket (``s3://``, ``gs://``) or a web
server (``https://``, ``http://``).

The bytes are streamed from the source into the store (hashed on the way, written to a temp
file of the store and renamed to their id: :meth:`~ama.plumbing.odb.FileObjectDatabase.
write_stream`), then placed in the work tree from there as a checkout places files, and
staged. A download is never held whole in memory nor copied anywhere outside the store.

Buckets are read through the remote's own storage backends (``ama_remote.storage``), so
each cloud SDK stays imported by one module; credentials come from the SDKs' standard
chains (boto3: the environment, a profile; google-cloud-storage: application default
credentials), and ``AWS_ENDPOINT_URL`` / ``STORAGE_EMULATOR_HOST`` select another endpoint.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

from ama.plumbing.errors import NOT_ALLOWED, UNREACHABLE, AmaError, BadInput, NotFound, path_list
from ama.plumbing.index import IndexEntry
from ama.plumbing.lock import store_in_use
from ama.plumbing.objects import path_problems
from ama.porcelain.add import Progress, Staged
from ama.porcelain.asset import Asset, locked_index

if TYPE_CHECKING:
    import requests

    from ama.plumbing.odb import FileObjectDatabase
    from ama.plumbing.proxy import ProxyDescriptor

SCHEMES = ("s3", "gs", "http", "https")
# Read this much at a time: the most a download holds in memory at once.
CHUNK = 8 << 20

_CREDENTIALS_HINT = {
    "s3": "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, for an identity "
          "that may read the bucket",
    "gs": "run 'gcloud auth application-default login', or set GOOGLE_APPLICATION_CREDENTIALS "
          "to a service-account key that may read the bucket",
}


def is_source(arg: str) -> bool:
    """Whether the command-line argument ``arg`` names a source URL rather than a path."""
    scheme, sep, _ = arg.partition("://")
    return bool(sep) and scheme.lower() in SCHEMES


class SourceNotFound(NotFound):
    """A source URL that names no object: a missing bucket, key or web page."""


class SourceDenied(AmaError):
    """A source that refused the credentials found (or found none)."""

    exit_code = NOT_ALLOWED


class SourceUnreachable(AmaError):
    """A source that could not be reached, or answered with an error."""

    exit_code = UNREACHABLE


class SourceChanged(AmaError):
    """A source whose length changed while it was read: what was read is not staged."""


@dataclass(frozen=True)
class SourceFile:
    """One object of a source: its URL, where it lands (from the asset root) and its size
    as the source announced it (None: not announced)."""

    url: str
    path: str
    size: int | None
    key: str = ""


class Source(Protocol):
    """Where files come from: the objects it names, a stream of each one's bytes, and what
    version of it the source holds (``(size, ETag or generation, version id)``)."""

    def files(self, folder: str) -> list[SourceFile]: ...
    def chunks(self, file: SourceFile) -> Iterator[bytes]: ...
    def tag(self, file: SourceFile) -> tuple[int | None, str, str]: ...


def _under(folder: str, name: str) -> str:
    return f"{folder}/{name}" if folder else name


class BucketSource:
    """An object (``s3://bucket/key``) or every object under a prefix (``gs://bucket/dir/``,
    ``s3://bucket``) of a bucket."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme.lower()
        self.bucket = parts.netloc
        self.key = unquote(parts.path.lstrip("/"))
        if not self.bucket or parts.query or parts.fragment:
            raise BadInput(f"{url} is not {self.scheme}://BUCKET/KEY",
                           f"write it as {self.scheme}://BUCKET/KEY, or "
                           f"{self.scheme}://BUCKET/PREFIX/ for every object under PREFIX")
        try:
            from ama_remote.storage import open_backend

            with self._errors():
                self.backend = open_backend(f"{self.scheme}://{self.bucket}")
        except ImportError as e:  # a plain install: the SDKs come with the server's extra
            raise BadInput(f"reading {self.scheme}:// sources needs the cloud SDKs ({e.name})",
                           "pip install 'amapy[server]'") from None

    @contextlib.contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Turn the storage backend's errors (worded for a server's storage) into ones about
        this source and the user's own credentials."""
        from ama_remote.storage.base import ObjectMissing, StorageDenied, StorageUnreachable

        where = f"{self.scheme}://{self.bucket}/{key}" if key is not None else self.url
        try:
            yield
        except ObjectMissing:
            raise SourceNotFound(f"{where}: no such object",
                                 "check the key; a trailing / adds every object under a "
                                 "prefix") from None
        except StorageDenied as e:
            raise SourceDenied(f"{where}: access refused: {e.message.partition(': ')[2]}",
                               _CREDENTIALS_HINT[self.scheme]) from None
        except StorageUnreachable as e:
            detail = e.message.partition(" is unreachable: ")[2] or e.message
            if "does not exist" in detail:
                raise SourceNotFound(f"{where}: {detail}", "check the bucket's name") from None
            raise SourceUnreachable(
                f"{where} is unreachable: {detail}",
                "check the network, and AWS_ENDPOINT_URL or STORAGE_EMULATOR_HOST if set"
            ) from None

    def files(self, folder: str) -> list[SourceFile]:
        """The objects this URL names, each landing below ``folder``: a key's under its
        base name, a prefix's under their paths below it. Raises :class:`SourceNotFound`
        when there are none."""
        base = f"{self.scheme}://{self.bucket}/"
        if self.key and not self.key.endswith("/"):
            with self._errors(self.key):
                size = self.backend.stat(self.key)
            if size is None:
                with self._errors(self.key):
                    under = next(iter(self.backend.list(self.key + "/")), None)
                hint = (f"add {self.url}/ (with a trailing /) for every object under it"
                        if under is not None else "check the key")
                raise SourceNotFound(f"{self.url}: no such object", hint)
            return [SourceFile(self.url, _under(folder, posixpath.basename(self.key)), size,
                               self.key)]
        from ama_remote.storage.base import ListsSizes

        listed: list[tuple[str, int | None]]
        with self._errors():
            if isinstance(self.backend, ListsSizes):
                listed = list(self.backend.list_sizes(self.key))
            else:
                listed = [(k, self.backend.stat(k)) for k in self.backend.list(self.key)]
        found = [SourceFile(base + key, _under(folder, key[len(self.key):]), size, key)
                 for key, size in listed if not key.endswith("/")]
        if not found:
            raise SourceNotFound(f"{self.url}: no object under it", "check the prefix")
        return found

    def tag(self, file: SourceFile) -> tuple[int | None, str, str]:
        from ama_remote.storage.base import Tags

        if not isinstance(self.backend, Tags):
            with self._errors(file.key):
                return self.backend.stat(file.key), "", ""
        with self._errors(file.key):
            found = self.backend.tag(file.key)
        if found is None:
            raise SourceNotFound(f"{file.url}: no such object", "check the key")
        return found

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        with self._errors(file.key):
            stream: BinaryIO = self.backend.open(file.key)
        try:
            while True:
                with self._errors(file.key):
                    chunk = stream.read(CHUNK)
                if not chunk:
                    return
                yield chunk
        finally:
            stream.close()


def _anonymous() -> requests.Session:
    """A session that sends no credentials: a proxy's URL is chosen by whoever uploaded the
    version, and a server of theirs would receive the user's ~/.netrc login (see
    :func:`~ama.plumbing.transport.plain_session`)."""
    from ama.plumbing.transport import plain_session

    return plain_session()


class WebSource:
    """A file on a web server, fetched with one GET."""

    def __init__(self, url: str, session: requests.Session | None = None) -> None:
        self.url = url
        self.session = session or _anonymous()

    def _get(self) -> requests.Response:
        import requests

        try:
            # The bytes as served: a .gz file stays compressed, and its length is the
            # announced one.
            answer = self.session.get(self.url, stream=True, timeout=(10, 60),
                                      headers={"Accept-Encoding": "identity"})
        except requests.RequestException as e:
            raise SourceUnreachable(f"{self.url} is unreachable: {e}",
                                    "check the address and the network") from None
        if answer.status_code >= 400:
            answer.close()
            status = f"{answer.status_code} {answer.reason}".strip()
            if answer.status_code in (404, 410):
                raise SourceNotFound(f"{self.url}: the server answered {status}",
                                     "check the address")
            if answer.status_code in (401, 403):
                raise SourceDenied(f"{self.url}: the server answered {status}",
                                   "ama sends no credentials to web servers: use a URL "
                                   "that needs none (a presigned one, say)")
            raise SourceUnreachable(f"{self.url}: the server answered {status}",
                                    "retry later, or check the address")
        return answer

    def files(self, folder: str) -> list[SourceFile]:
        name = unquote(posixpath.basename(urlsplit(self.url).path))
        if not name:
            raise BadInput(f"{self.url} names no file (its path ends with /)",
                           "give the URL of a file")
        # Asked with a GET, not a HEAD (a presigned URL is signed for GET only), whose body
        # is left unread: the bytes are read later, by a GET of their own, so that a long
        # download before this one leaves no idle connection for the server to drop.
        answer = self._get()
        answer.close()
        length = answer.headers.get("Content-Length")
        size = int(length) if length is not None and length.isdigit() else None
        return [SourceFile(self.url, _under(folder, name), size)]

    def tag(self, file: SourceFile) -> tuple[int | None, str, str]:
        answer = self._get()  # a GET, unread, as files() asks (see there)
        answer.close()
        length = answer.headers.get("Content-Length")
        return (int(length) if length is not None and length.isdigit() else None,
                answer.headers.get("ETag", ""), "")

    def chunks(self, file: SourceFile) -> Iterator[bytes]:
        import requests

        answer = self._get()
        try:
            yield from answer.iter_content(CHUNK)
        except requests.RequestException as e:
            raise SourceUnreachable(f"{self.url}: the download broke off: {e}",
                                    "run the command again") from None
        finally:
            answer.close()


def open_source(url: str) -> Source:
    """Return the source of ``url`` (``s3://``, ``gs://``, ``https://`` or ``http://``);
    raises :class:`~ama.plumbing.errors.BadInput` for any other."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("s3", "gs"):
        return BucketSource(url)
    if scheme in ("http", "https"):
        return WebSource(url)
    raise BadInput(f"{url} is not a source ama reads",
                   "use s3://BUCKET/KEY, gs://BUCKET/KEY, https://HOST/PATH or a local path")


class InTheWay(BadInput):
    """Work-tree files where downloaded ones would land, not staged as they are."""


def add_sources(asset: Asset, urls: list[str], dest: str | None = None,
                cwd: str | os.PathLike[str] | None = None,
                progress: Progress | None = None,
                opener: Callable[[str], Source] = open_source, proxy: bool = False) -> Staged:
    """Stage the files at ``urls`` into the folder ``dest`` (relative to ``cwd``; default
    ``cwd`` itself): each object's bytes are streamed into the store and placed in the work
    tree from there. Returns what was staged.

    Every source is listed (and its objects' sizes asked) before any byte is read, so a
    missing key, bucket or page, or refused credentials, raise (:class:`SourceNotFound`,
    :class:`SourceDenied`, :class:`SourceUnreachable`) with nothing written. So does a file
    of the work tree at a landing place unless it is staged and unchanged (its bytes are in
    the store): :class:`InTheWay`. A source whose length differs from the one announced
    raises :class:`SourceChanged` and nothing is staged.

    With ``proxy`` each file is staged as a proxy file (ama-format(5), PROXY FILES): its
    bytes are still read once (to hash them, and kept in the asset store as a cache), and a
    descriptor recording the URL, size, id and the source's ETag or generation is stored;
    an upload sends the descriptor, never the bytes. A source whose tag changed while it
    was read raises :class:`SourceChanged`.
    """
    from ama.plumbing.checkout import checkout

    folder = asset.dir.relpath(dest if dest is not None else ".", cwd)
    files: list[tuple[Source, SourceFile]] = []
    for url in urls:
        source = opener(url)
        files.extend((source, f) for f in source.files(folder))
    seen: dict[str, str] = {}
    for _source, f in files:
        if f.path in seen:
            raise BadInput(f"{seen[f.path]} and {f.url} would both land at {f.path}",
                           "add them in two commands, with --dest")
        seen[f.path] = f.url
    problems = path_problems(f.path for _s, f in files)
    if problems:
        raise BadInput("these objects have names no asset may hold:\n"
                       + path_list([f"{p}: {why}" for p, why in problems]))
    result = Staged()
    base = os.fspath(asset.root)
    with store_in_use(asset.odb.root), locked_index(asset) as index:
        blocked = []
        for _source, f in files:
            full = f"{base}/{f.path}"
            if os.path.lexists(full):
                staged = index.get(f.path)
                if staged is None or not staged.matches(os.lstat(full)):
                    blocked.append(f.path)
            else:
                # A file or a symbolic link where a folder must be: placing the download
                # would remove it (a link is never followed).
                parts = f.path.split("/")[:-1]
                for n in range(1, len(parts) + 1):
                    at = f"{base}/{'/'.join(parts[:n])}"
                    if os.path.islink(at) or (os.path.lexists(at) and not os.path.isdir(at)):
                        blocked.append("/".join(parts[:n]))
                        break
        if blocked:
            blocked = sorted(set(blocked))
            raise InTheWay(f"{len(blocked)} file(s) where downloads would land (or their "
                           f"folders) are not staged as they are:\n"
                           f"{path_list(blocked)}",
                           "stage or move them first, or pick another folder with --dest")
        total = len(files)
        total_bytes = sum(f.size or 0 for _s, f in files)
        done_bytes = 0
        stored: list[tuple[str, str, int]] = []
        descriptors: dict[str, str] = {}
        count = 0

        def window(length: int) -> None:
            nonlocal done_bytes
            done_bytes += length
            if progress is not None:
                progress(count, total, done_bytes, max(total_bytes, done_bytes))

        if progress is not None:
            progress(0, total, 0, total_bytes)
        with asset.odb.batch():
            for source, f in files:
                before = source.tag(f) if proxy else None
                oid, size = asset.odb.write_stream(source.chunks(f), window)
                if f.size is not None and size != f.size:
                    raise SourceChanged(f"{f.url} announced {f.size:,} bytes but sent "
                                        f"{size:,}: it changed while it was read",
                                        "run the command again")
                if before is not None:
                    after = source.tag(f)
                    if after != before or (after[0] is not None and after[0] != size):
                        raise SourceChanged(f"{f.url} changed while it was read (ETag "
                                            f"{_shown(before[1]) or 'none'}, then "
                                            f"{_shown(after[1]) or 'none'})",
                                            "run the command again")
                    from ama.plumbing.proxy import ProxyDescriptor

                    descriptors[f.path] = asset.odb.write(ProxyDescriptor(
                        f.url, size, oid, before[1], before[2]).serialize())
                stored.append((f.path, oid, size))
                count += 1
        if progress is not None:
            progress(total, total, done_bytes, max(total_bytes, done_bytes))
        was = index.staged_proxies()
        for path, oid, size in stored:
            old = index.get(path)
            if path in descriptors:
                index.tree = None  # the same bytes as a proxy make another tree
                index.proxies[path] = (oid, descriptors[path])
            else:
                index.proxies.pop(path, None)
            if old is None:
                result.new.append(path)
            elif (old.id != oid or old.executable
                  or was.get(path) != index.proxies.get(path)):
                result.modified.append(path)
            else:
                continue
            result.bytes += size
            index.add(IndexEntry(path, oid, size))
        # Writes the index, with each placed file's stat.
        checkout(asset.odb, index, asset.root, [p for p, _o, _s in stored],
                 strategy=asset.link_strategy(), force=True,
                 verified={oid for _p, oid, _s in stored})
    return result.sort()


def _shown(tag: str) -> str:
    """A source's ETag as a message shows it: escaped when it holds a character a terminal
    would act on (a hostile source's escape sequence or carriage return)."""
    return tag if tag.isprintable() else ascii(tag)


class ProxyChanged(AmaError):
    """A proxy file whose source no longer holds the bytes its descriptor names."""


def _about(path: str, error: AmaError) -> AmaError:
    """``error`` (a source's), its message starting with the proxy file it was fetched for."""
    return type(error)(f"{path}: {error.message}", error.hint)


def fetch_proxy(odb: FileObjectDatabase, path: str, descriptor: ProxyDescriptor,
                window: Callable[[int], None] | None = None,
                opener: Callable[[str], Source] = open_source) -> None:
    """Fetch the bytes of the proxy file ``path`` from its source into the store ``odb``.

    The source's tag (size, ETag or generation) is asked first; the bytes are then
    streamed through the hasher into the store's temp area and become an object only when
    their length and id are the descriptor's: a source that changed raises
    :class:`ProxyChanged` naming the file and the URL, and never leaves other bytes in the
    store, nor in the work tree. A source is read no further than the size described.
    The source's own errors (:class:`SourceDenied` without credentials) name the file.
    """
    from ama.plumbing.proxy import url_problem

    problem = url_problem(descriptor.url)
    if problem is not None:  # parse_descriptor refused it already; never fetched anyway
        raise BadInput(f"{path}: {problem}")
    hint = (f"ask the asset's author to add it again ('ama add --proxy {descriptor.url}') "
            "and upload a new version")
    try:
        source, file = _described_source(descriptor, path, opener)
        size, etag, _version = source.tag(file)
        if descriptor.etag and etag and etag != descriptor.etag:
            raise ProxyChanged(f"{path}: its source {descriptor.url} changed since it was "
                               f"added (ETag {descriptor.etag}, now {_shown(etag)})", hint)
        if size is not None and size != descriptor.size:
            raise ProxyChanged(f"{path}: its source {descriptor.url} changed since it was "
                               f"added ({descriptor.size:,} bytes, now {size:,})", hint)

        def bounded() -> Iterator[bytes]:
            left = descriptor.size
            for chunk in source.chunks(file):
                if len(chunk) > left:
                    raise ProxyChanged(f"{path}: its source {descriptor.url} changed since "
                                       f"it was added (more than {descriptor.size:,} bytes)",
                                       hint)
                left -= len(chunk)
                yield chunk

        def check(oid: str, length: int) -> None:
            if oid != descriptor.id:
                raise ProxyChanged(f"{path}: its source {descriptor.url} changed since it "
                                   f"was added (ETag {descriptor.etag or 'none'}; its bytes "
                                   f"are no longer those of object {descriptor.id})", hint)

        odb.write_stream(bounded(), window, check)
    except (SourceDenied, SourceNotFound, SourceUnreachable) as e:
        raise _about(path, e) from None


@dataclass
class ProxyCheck:
    """What ``ama store verify --proxies`` found: how many proxies it checked and, for
    each whose source no longer holds its bytes, ``{"path", "url", "problem"}``."""

    checked: int = 0
    changed: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"checked": self.checked, "changed": self.changed}


def check_proxies(asset: Asset, full: bool = False,
                  opener: Callable[[str], Source] = open_source) -> ProxyCheck:
    """Ask the source of every proxy file of the version the asset directory holds whether
    it still holds the bytes its descriptor names: its size and ETag or generation (one
    HEAD or stat each), and with ``full`` its bytes, hashed as they stream (never stored).
    A source that refuses the credentials or cannot be reached raises, naming the file."""
    from blake3 import blake3

    from ama.porcelain.download import version_files

    result = ProxyCheck()
    manifest = asset.head.manifest
    if manifest is None:
        raise NotFound(f"{asset.head.name} was never uploaded: it holds no version to check",
                       "upload it first with 'ama upload -m MESSAGE'")
    proxies: dict[str, tuple[str, ProxyDescriptor]] = {}
    version_files(asset.store.objects, manifest, proxies=proxies)
    for path, (_did, descriptor) in sorted(proxies.items()):
        try:
            source, file = _described_source(descriptor, path, opener)
            size, etag, _version = source.tag(file)
            problem = None
            if descriptor.etag and etag != descriptor.etag:
                problem = f"ETag {descriptor.etag}, now {_shown(etag) or 'none'}"
            elif size is not None and size != descriptor.size:
                problem = f"{descriptor.size:,} bytes, now {size:,}"
            elif full:
                hasher = blake3()
                length = 0
                for chunk in source.chunks(file):
                    hasher.update(chunk)
                    length += len(chunk)
                    if length > descriptor.size:
                        break  # changed already: never read on (a source may not end)
                if length != descriptor.size or hasher.hexdigest() != descriptor.id:
                    problem = f"its bytes are no longer those of object {descriptor.id}"
        except (SourceDenied, SourceNotFound, SourceUnreachable) as e:
            if isinstance(e, SourceNotFound):
                problem = "it is gone"
            else:
                raise _about(path, e) from None
        result.checked += 1
        if problem is not None:
            result.changed.append({"path": path, "url": descriptor.url, "problem": problem})
    return result


def _described_source(descriptor: ProxyDescriptor, path: str,
                      opener: Callable[[str], Source]) -> tuple[Source, SourceFile]:
    """The source of the proxy file ``path`` and the file it is there, as its descriptor
    says (a bucket's key, or the whole URL of a web source)."""
    source = opener(descriptor.url)
    key = unquote(urlsplit(descriptor.url).path.lstrip("/"))
    return source, SourceFile(descriptor.url, path, descriptor.size,
                              key if isinstance(source, BucketSource) else "")
