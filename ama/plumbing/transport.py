"""How the client talks to a remote: the :class:`Transport` interface and its HTTP
implementation over ``requests`` (docs/design.md §4, §5).

``requests`` is imported when an HTTP transport is built, not with this module: a command
on a ``file://`` remote (or none) never pays for loading it.

The in-process implementation for ``file://`` remotes lives with the porcelain, which is the
only client code allowed to import the remote. Both raise the errors defined here (or the
plumbing's :class:`NotFound` and :class:`BadInput`), so a caller handles one set of errors
whatever the remote, and each carries the exit code of docs/design.md §6; both answer with
the documents typed in :mod:`ama.plumbing.wire`.
"""

from __future__ import annotations

import gc
import os
import time
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

from ama.plumbing import wire
from ama.plumbing.durable import write_at
from ama.plumbing.errors import (  # noqa: F401 - the protocol's errors, raised from here too
    FAILED,
    UNREACHABLE,
    AmaError,
    BadInput,
    Conflict,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    Unauthenticated,
    UnsupportedMediaType,
    ValidationFailed,
)
from ama.plumbing.hashing import CHUNK, is_id
from ama.plumbing.objects import CLASS_NAME_RE, VERSION_RE
from ama.plumbing.odb import CorruptObject

if TYPE_CHECKING:
    import requests
    from requests.adapters import HTTPAdapter

# -- errors ---------------------------------------------------------------------------------


class RemoteError(AmaError):
    """The remote answered with an error this client does not know more about."""

    exit_code = FAILED


class Unreachable(AmaError):
    """The remote cannot be reached: no connection, no answer in time, or unavailable."""

    exit_code = UNREACHABLE


def plain_session() -> requests.Session:
    """A requests session that adds no credentials of its own. requests would add the
    user's ~/.netrc login for a URL's host (its ``default`` one for any host) to each
    request without an Authorization header and to every redirect, where the URLs come
    from a remote (presigned storage URLs, a proxy file's source): a server of someone
    else's would receive the login. An Authorization header the caller sets is kept on a
    redirect to the same host only. Proxies and CA bundles of the environment still
    apply."""
    import requests

    class Plain(requests.Session):
        def rebuild_auth(self, prepared_request: requests.PreparedRequest,
                         response: requests.Response) -> None:
            if "Authorization" in prepared_request.headers and self.should_strip_auth(
                    str(response.request.url), str(prepared_request.url)):
                del prepared_request.headers["Authorization"]

    session = Plain()
    # Any auth set keeps requests from looking the host up in the netrc; this one adds none.
    session.auth = lambda request: request
    return session


# The most bytes a download of an object whose size is not known takes (a manifest, a tree:
# a tree of a million entries is about 100 MB); an object of known size takes its size.
MAX_UNSIZED = 1 << 30


# -- the interface --------------------------------------------------------------------------


class _AnyTarget:
    """The type of :data:`ANY_TARGET`."""


# put_alias's ``expected`` when the move is not a compare-and-swap: wherever the alias points.
ANY_TARGET = _AnyTarget()


class Transport(Protocol):
    """The calls a client makes to a remote. Lists are complete (pages are followed);
    ``action`` arguments are the per-object actions that :meth:`batch` returned."""

    url: str

    def signup(self, username: str, email: str) -> wire.User: ...
    def rotate_token(self) -> str: ...
    def revoke_token(self) -> None: ...
    def me(self) -> wire.Me: ...
    def projects(self) -> list[wire.ProjectRole]: ...
    def project(self, project: str) -> wire.Project: ...
    def classes(self, project: str) -> list[wire.AssetClass]: ...
    def get_class(self, project: str, name: str) -> wire.AssetClass: ...
    def put_class(self, project: str, name: str, description: str = "",
                  schema: wire.JSONSchema | None = None, rules: wire.ClassRules | None = None,
                  visualisation: Any = None) -> wire.AssetClass: ...
    def assets(self, project: str, cls: str,
               deleted: bool = False) -> Iterator[wire.AssetRecord]: ...
    def asset(self, project: str, cls: str, name: str) -> wire.AssetRecord: ...
    def update_asset(self, project: str, cls: str, name: str, title: str | None = None,
                     description: str | None = None, tags: list[str] | None = None,
                     status: str | None = None) -> wire.AssetRecord: ...
    def delete_asset(self, project: str, cls: str, name: str,
                     restore: bool = False) -> wire.AssetRecord: ...
    def versions(self, project: str, cls: str, asset: str) -> list[wire.Version]: ...
    def version_size(self, project: str, cls: str, asset: str,
                     version: str) -> wire.VersionSize: ...
    def commit(self, project: str, cls: str, asset: int | None, parent: str | None,
               manifest: str, idempotency_key: str, bump: str = "patch") -> wire.Version: ...
    def put_alias(self, project: str, cls: str, alias: str, asset: int,
                  expected: int | None | _AnyTarget = ANY_TARGET) -> wire.AliasRecord: ...
    def delete_alias(self, project: str, cls: str, alias: str) -> None: ...
    def find(self, project: str, hash: str | None = None, alias: str | None = None,
             cls: str | None = None, blob: str | None = None) -> list[wire.FoundVersion]: ...
    def inputs(self, project: str, manifest: str) -> list[wire.Input]: ...
    def dependents(self, project: str, manifest: str) -> list[wire.Dependent]: ...
    def batch(self, project: str, operation: str, objects: list[wire.ObjectRequest],
              packs: bool = False) -> wire.Negotiation: ...
    def verify(self, project: str, ids: list[str]) -> wire.Verification: ...
    def send_pack(self, project: str, name: str, path: str | os.PathLike[str],
                  size: int) -> wire.PackAnswer: ...
    def upload(self, action: Mapping[str, Any], path: str | os.PathLike[str],
               on_bytes: Callable[[int], None] | None = None) -> None: ...
    def download(self, action: Mapping[str, Any], oid: str, path: str | os.PathLike[str],
                 on_bytes: Callable[[int], None] | None = None, size: int = ...) -> int: ...
    def read_range(self, action: Mapping[str, Any], oid: str, start: int,
                   length: int) -> bytes: ...
    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None: ...
    # administration (ama-protocol(7), ADMINISTRATION)
    def users(self) -> list[wire.AdminUser]: ...
    def set_user_active(self, username: str, active: bool) -> wire.User: ...
    def members(self, project: str) -> list[wire.Member]: ...
    def set_role(self, project: str, username: str, role: str) -> wire.Role: ...
    def remove_member(self, project: str, username: str) -> None: ...
    def tokens(self) -> list[wire.TokenInfo]: ...
    def revoke_token_id(self, token_id: int) -> None: ...
    def audit(self, user: str | None = None, project: str | None = None,
              action: str | None = None, since: str | None = None,
              until: str | None = None) -> Iterator[wire.AuditEntry]: ...


@runtime_checkable
class LocalTransfer(Protocol):
    """What a transport to a remote on this machine (``file://``) adds to :class:`Transport`:
    objects move as files in bulk, a whole operation at once, instead of one request each.
    Callers use these when a transport has them (``isinstance(t, LocalTransfer)``)."""

    def send_files(self, project: str, files: list[tuple[str, int, str]],
                   progress: Callable[[int], None] | None = None,
                   on_bytes: Callable[[int], None] | None = None) -> wire.StoredFiles:
        """Store (id, size, path) files in the remote; it verifies each and skips those it
        holds. Returns ``{"objects": [{"id","size","verified","stored"} | {"id","error"}]}``."""
        ...

    def receive_files(self, project: str, objects: list[tuple[str, int]], odb: Any,
                      progress: Callable[[int], None] | None = None,
                      on_bytes: Callable[[int], None] | None = None) -> int:
        """Bring (id, size) objects into the object database ``odb`` (inside the caller's
        ``odb.batch()``), each re-hashed before it enters; return how many were added.
        ``progress`` gets the objects done so far, ``on_bytes`` the bytes of each step.
        Raises NotFound naming an object the remote does not hold."""
        ...


# -- HTTP -----------------------------------------------------------------------------------

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read between bytes) in seconds
_TRUE = ("1", "true", "yes", "on")

# Answers worth asking again: throttled (429, S3's SlowDown is a 503), or a server, proxy or
# load balancer that failed this once (500, 502, 503, 504).
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Methods whose requests are sent again after a lost answer or one of RETRY_STATUSES (a
# request that never left, a refused connection, is sent again whatever its method):
# - GET and HEAD read;
# - PUT stores an object under its content's id, create-only, so a repeat sends the same
#   bytes to the same place (a repeat of a PUT that did arrive answers 412, taken as done:
#   the verify that follows hashes what is there); PUT of a class or an alias sets it;
# - PATCH of an asset sets fields to given values;
# - POST objects/batch and objects/verify only negotiate and check; POST versions (a
#   commit) carries an idempotency key, with which the remote answers a repeat with the
#   first commit's result instead of committing twice.
# Not DELETE (a repeat of one that arrived answers 404), nor the POSTs of _NOT_REPEATABLE.
RETRY_METHODS = frozenset({"GET", "HEAD", "PUT", "PATCH", "POST"})
# Signing up twice fails, and exchanging a token twice revokes the one the first exchange
# gave: these are sent once (again only when the connection was refused).
_NOT_REPEATABLE = ("/v1/auth/signup", "/v1/auth/token")


def skip_dns(environ: Mapping[str, str] | None = None) -> bool:
    """Return whether ``ASSET_SERVER_SKIP_DNS`` asks to connect to the configured address."""
    environ = os.environ if environ is None else environ
    return environ.get("ASSET_SERVER_SKIP_DNS", "").strip().lower() in _TRUE


def _public(url: str) -> str:
    """``url`` without its query and fragment: presigned URLs carry credentials there."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


def _seg(value: str) -> str:
    return quote(str(value), safe="")


def _pinned_adapter(host: str, address: str, **kwargs: Any) -> HTTPAdapter:
    """An adapter that connects to ``address`` for every URL on ``host``, while the Host
    header, TLS server name and certificate check still use ``host`` (ASSET_SERVER_SKIP_DNS).
    ``kwargs`` go to :class:`requests.adapters.HTTPAdapter`."""
    adapter: HTTPAdapter = _pinned_adapter_class()(host, address, **kwargs)
    return adapter


@cache
def _pinned_adapter_class() -> Any:
    """The class of :func:`_pinned_adapter`, made on first use: it subclasses a ``requests``
    class, which this module does not import until an HTTP transport needs it."""
    from requests.adapters import HTTPAdapter

    class PinnedAddressAdapter(HTTPAdapter):
        """Connects to ``address`` for every URL on ``host``, while the Host header, TLS
        server name and certificate check still use ``host``."""

        def __init__(self, host: str, address: str, **kwargs: Any) -> None:
            self.host = host.lower()
            self.address = address
            super().__init__(**kwargs)

        def send(self, request: requests.PreparedRequest,  # type: ignore[override]
                 **kwargs: Any) -> requests.Response:
            parts = urlsplit(request.url or "")
            if (parts.hostname or "").lower() == self.host:
                request.headers["Host"] = parts.netloc.rpartition("@")[2]
                ip = f"[{self.address}]" if ":" in self.address else self.address
                netloc = ip + (f":{parts.port}" if parts.port else "")
                request.url = urlunsplit(parts._replace(netloc=netloc))
            return super().send(request, **kwargs)

        def get_connection_with_tls_context(self, request: requests.PreparedRequest,
                                            verify: Any, proxies: Any = None,
                                            cert: Any = None) -> Any:
            host_params, pool_kwargs = self.build_connection_pool_key_attributes(
                request, verify, cert)
            if host_params["host"].strip("[]") != self.address:
                return super().get_connection_with_tls_context(request, verify, proxies, cert)
            if host_params["scheme"] == "https":
                pool_kwargs["server_hostname"] = self.host
                pool_kwargs["assert_hostname"] = self.host
            # No proxy: the point of pinning the address is to reach the server directly.
            return self.poolmanager.connection_from_host(**host_params,
                                                         pool_kwargs=pool_kwargs)

    return PinnedAddressAdapter


@cache
def _retry_class() -> Any:
    """urllib3's ``Retry`` that also stops ``deadline`` seconds after a request's first
    failure, and tells on the error it gives up with how many tries were made; made on
    first use, like :func:`_pinned_adapter_class`."""
    from urllib3.exceptions import MaxRetryError
    from urllib3.util.retry import Retry

    class DeadlineRetry(Retry):  # type: ignore[misc]
        def __init__(self, *args: Any, deadline: float | None = None,
                     first_failure: float | None = None, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.deadline = deadline
            self.first_failure = first_failure

        def new(self, **kwargs: Any) -> Any:
            kwargs.setdefault("deadline", self.deadline)
            kwargs.setdefault("first_failure", self.first_failure)
            return super().new(**kwargs)

        def increment(self, method: str | None = None, url: str | None = None,
                      *args: Any, **kwargs: Any) -> Any:
            now = time.monotonic()
            tries = len(self.history) + 1
            try:
                after = super().increment(method, url, *args, **kwargs)
            except MaxRetryError as e:
                e.tries = tries  # type: ignore[attr-defined]
                raise
            after.first_failure = self.first_failure if self.first_failure is not None else now
            if self.deadline is not None and now - after.first_failure >= self.deadline:
                error = MaxRetryError(cast(Any, kwargs.get("_pool")), url or "",
                                      kwargs.get("error") or after.history[-1].error)
                error.tries = tries  # type: ignore[attr-defined]
                raise error
            return after

        def get_retry_after(self, response: Any) -> float | None:
            # A Retry-After longer than the longest backoff is waited only that long: the
            # deadline, not the server, bounds how long a command hangs.
            after = super().get_retry_after(response)
            return None if after is None else min(after, self.backoff_max)

    return DeadlineRetry


def _retry(retries: int, deadline: float, repeat: bool = True) -> Any:
    """The retry policy of every request: up to ``retries`` more tries after a connection
    that failed or broke, or an answer in RETRY_STATUSES, for RETRY_METHODS (when
    ``repeat`` is False, only after a refused connection: the request never left). The
    first retry goes at once, the next after 1, 2, 4, 8 s (at most 10 s) plus up to 0.5 s
    of jitter, so that clients that failed together do not come back together, or after
    what the server's Retry-After asks (up to 10 s); none once ``deadline`` seconds have
    passed since the first failure."""
    retry: Any = _retry_class()(
        total=retries, connect=retries, read=retries if repeat else 0,
        status=retries if repeat else 0, other=0, redirect=0,
        allowed_methods=RETRY_METHODS, status_forcelist=RETRY_STATUSES,
        backoff_factor=0.5, backoff_jitter=0.5, backoff_max=10.0,
        respect_retry_after_header=True, raise_on_status=False, deadline=deadline)
    return retry


class HttpTransport:
    """The :class:`Transport` to an ``ama-server`` at ``url`` (``http(s)://host[:port]``).

    ``address`` is the server's IP address, used instead of resolving the host name when
    ``ASSET_SERVER_SKIP_DNS`` is true in ``environ``. ``session`` may be injected (tests,
    connection reuse). Every request, to the remote and to the storage URLs it hands out,
    goes through one session: ``pool_size`` connections per host are kept open for reuse
    (as many as the threads that transfer at once, so none is closed and opened again for
    each object), and requests that are safe to repeat are tried up to ``retries`` more
    times, within ``retry_deadline`` seconds of their first failure (see :func:`_retry`).
    """

    def __init__(self, url: str, token: str | None = None, address: str | None = None,
                 environ: Mapping[str, str] | None = None,
                 session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, retries: int = 5,
                 pool_size: int = 10, retry_deadline: float = 120.0) -> None:
        from requests.adapters import HTTPAdapter

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"remote URL {url!r} is not http(s)://host[:port]")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or plain_session()
        if skip_dns(environ) and not address:
            raise BadInput(
                f"ASSET_SERVER_SKIP_DNS is set but no address is configured for {self.url}",
                "log in again to record it, or run 'ama config set server.ip IP'")

        def adapter(repeat: bool) -> HTTPAdapter:
            retry = _retry(retries, retry_deadline, repeat)
            if skip_dns(environ):
                return _pinned_adapter(parts.hostname or "", address or "", max_retries=retry,
                                       pool_maxsize=pool_size)
            return HTTPAdapter(max_retries=retry, pool_maxsize=pool_size)

        everything = adapter(True)
        self.session.mount("http://", everything)
        self.session.mount("https://", everything)
        once = adapter(False)
        for path in _NOT_REPEATABLE:  # the longest matching prefix wins
            self.session.mount(self.url + path, once)
        self._origin = (parts.scheme, parts.netloc.lower())

    # -- plumbing of the transport itself --

    def _headers_for(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        # The token goes only to the server itself, never to a storage service's presigned URL.
        if self.token and (parts.scheme, parts.netloc.lower()) == self._origin:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    def _send(self, method: str, url: str, accept: tuple[int, ...] = (),
              **kwargs: Any) -> requests.Response:
        """Send a request (retried as :func:`_retry` says); return its answer. Raises
        Unreachable (no connection, no answer in time, still unavailable after the retries)
        or the error the answer stands for, unless its status is in ``accept``."""
        import requests

        headers = {**self._headers_for(url), **kwargs.pop("headers", {})}
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout,
                                            **kwargs)
        except (requests.Timeout, requests.ConnectionError) as e:
            cause = e.args[0] if e.args else e
            reason = getattr(cause, "reason", cause)
            tries = _tried(getattr(cause, "tries", 1))
            if isinstance(e, requests.Timeout) or "timed out" in str(reason).lower():
                raise Unreachable(f"the remote at {_public(url)} did not answer in time{tries}",
                                  "check the network, or try again later") from None
            raise Unreachable(f"cannot connect to the remote at {_public(url)}{tries}: {reason}",
                              "check the remote URL and the network") from None
        if response.status_code >= 400 and response.status_code not in accept:
            try:
                error = _error_from(response, url)
                retried = getattr(response.raw, "retries", None)
                if retried is not None and retried.history:
                    error.message += _tried(len(retried.history) + 1)
                    error.args = (error.message,)
                raise error
            finally:
                response.close()
        return response

    def _call(self, method: str, path: str, body: Any = None,
              params: Mapping[str, Any] | None = None) -> Any:
        return self._decode(self._request(method, path, body, params), method, path)

    def _request(self, method: str, path: str, body: Any = None,
                 params: Mapping[str, Any] | None = None) -> requests.Response:
        kwargs: dict[str, Any] = {}
        if body is not None:
            kwargs["data"] = _dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        return self._send(method, self.url + path, params=params, **kwargs)

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        if response.status_code == 204 or not response.content:
            return None
        try:
            return _loads(response.content)
        except ValueError:
            raise RemoteError(f"the remote at {self.url} answered {method} {path} with "
                              "something that is not JSON",
                              "check that the remote URL names an ama server") from None

    def _all(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        """The items of every page of the listing at ``path``, the first page first."""
        page: int | None = 1
        while page is not None:
            answer: wire.Page = self._call("GET", path, params={**(params or {}), "page": page})
            yield from answer["items"]
            following = answer.get("next_page")
            if following is not None and (type(following) is not int or following <= page
                                          or not answer["items"]):
                raise RemoteError(f"the remote at {self.url} answered {path} with page "
                                  f"{following!r} after page {page}",
                                  "tell the server's administrator")
            page = following

    def _p(self, project: str) -> str:
        return f"/v1/projects/{_seg(project)}"

    def _c(self, project: str, cls: str) -> str:
        return f"{self._p(project)}/classes/{_seg(cls)}"

    # -- auth --

    def signup(self, username: str, email: str) -> wire.User:
        result: wire.User = self._call("POST", "/v1/auth/signup",
                                            {"username": username, "email": email})
        return result

    def rotate_token(self) -> str:
        """Exchange our token for a fresh one (the old one stops working); return it."""
        answer: wire.Token = self._call("POST", "/v1/auth/token", {})
        token = answer["token"]
        self.token = token
        return token

    def revoke_token(self) -> None:
        self._call("DELETE", "/v1/auth/token")

    def login_settings(self) -> wire.LoginSettings:
        """Return what browser login needs (issuer, client id, scopes); raises NotFound
        when the remote has no browser login."""
        result: wire.LoginSettings = self._call("GET", "/v1/auth/oidc")
        return result

    def login(self, grant_type: str, **fields: Any) -> wire.Token:
        """Exchange a login grant (an ID token, …) for a token; keep it and return
        ``{"token", "username"}``."""
        result: wire.Token = self._call("POST", "/v1/auth/token",
                                            {"grant_type": grant_type, **fields})
        self.token = result["token"]
        return result

    def me(self) -> wire.Me:
        result: wire.Me = self._call("GET", "/v1/auth/me")
        return result

    # -- projects, classes, assets --

    def projects(self) -> list[wire.ProjectRole]:
        return list(self._all("/v1/projects"))

    def project(self, project: str) -> wire.Project:
        result: wire.Project = self._call("GET", self._p(project))
        return result

    def classes(self, project: str) -> list[wire.AssetClass]:
        return [self._checked_class(c) for c in self._all(self._p(project) + "/classes")]

    def get_class(self, project: str, name: str) -> wire.AssetClass:
        result: wire.AssetClass = self._checked_class(self._call("GET", self._c(project, name)))
        if result["name"] != name:
            raise self._strange("a class", "name", result["name"])
        return result

    def put_class(self, project: str, name: str, description: str = "",
                  schema: wire.JSONSchema | None = None, rules: wire.ClassRules | None = None,
                  visualisation: Any = None) -> wire.AssetClass:
        result: wire.AssetClass = self._call("PUT", self._c(project, name), {
            "description": description, "schema": schema, "rules": rules,
            "visualisation": visualisation})
        return result

    def assets(self, project: str, cls: str,
               deleted: bool = False) -> Iterator[wire.AssetRecord]:
        return (self._checked_asset(a) for a in self._all(
            self._c(project, cls) + "/assets", {"deleted": 1} if deleted else None))

    def asset(self, project: str, cls: str, name: str) -> wire.AssetRecord:
        return self._checked_asset(
            self._call("GET", f"{self._c(project, cls)}/assets/{_seg(name)}"))

    def update_asset(self, project: str, cls: str, name: str, title: str | None = None,
                     description: str | None = None, tags: list[str] | None = None,
                     status: str | None = None) -> wire.AssetRecord:
        body = {k: v for k, v in (("title", title), ("description", description), ("tags", tags),
                                  ("status", status)) if v is not None}
        result: wire.AssetRecord = self._call(
            "PATCH", f"{self._c(project, cls)}/assets/{_seg(name)}", body)
        return result

    def delete_asset(self, project: str, cls: str, name: str,
                     restore: bool = False) -> wire.AssetRecord:
        """Delete the asset softly, or with ``restore`` bring it back (project admins)."""
        where = f"{self._c(project, cls)}/assets/{_seg(name)}"
        result: wire.AssetRecord = (self._call("POST", where + "/restore") if restore
                                    else self._call("DELETE", where))
        return result

    def versions(self, project: str, cls: str, asset: str) -> list[wire.Version]:
        return [self._checked_version(v) for v in
                self._all(f"{self._c(project, cls)}/assets/{_seg(asset)}/versions")]

    def version_size(self, project: str, cls: str, asset: str, version: str) -> wire.VersionSize:
        result: wire.VersionSize = self._call(
            "GET", f"{self._c(project, cls)}/assets/{_seg(asset)}/versions/{_seg(version)}/size")
        return result

    def commit(self, project: str, cls: str, asset: int | None, parent: str | None,
               manifest: str, idempotency_key: str, bump: str = "patch") -> wire.Version:
        """Record ``manifest`` as the next version; raises :class:`Conflict` (someone uploaded
        first) or :class:`ValidationFailed` (objects missing, class rules broken)."""
        result: wire.Version = self._checked_version(self._call(
            "POST", self._c(project, cls) + "/versions", {
                "asset": asset, "parent": parent, "manifest": manifest,
                "idempotency_key": idempotency_key, "bump": bump}))
        return result

    def put_alias(self, project: str, cls: str, alias: str, asset: int,
                  expected: int | None | _AnyTarget = ANY_TARGET) -> wire.AliasRecord:
        # expected=ordinal (or None: "no such alias yet") makes it a compare-and-swap.
        body: dict[str, int | None] = {"asset": asset}
        if not isinstance(expected, _AnyTarget):
            body["expected"] = expected
        result: wire.AliasRecord = self._call(
            "PUT", f"{self._c(project, cls)}/aliases/{_seg(alias)}", body)
        return result

    def delete_alias(self, project: str, cls: str, alias: str) -> None:
        self._call("DELETE", f"{self._c(project, cls)}/aliases/{_seg(alias)}")

    # -- finding and lineage --

    def find(self, project: str, hash: str | None = None, alias: str | None = None,
             cls: str | None = None, blob: str | None = None) -> list[wire.FoundVersion]:
        query = {k: v for k, v in (("hash", hash), ("alias", alias), ("class", cls),
                                   ("blob", blob)) if v is not None}
        return [self._checked_version(v) for v in self._all(self._p(project) + "/find", query)]

    def inputs(self, project: str, manifest: str) -> list[wire.Input]:
        found: list[wire.Input] = []
        for item in self._all(f"{self._p(project)}/versions/{_seg(manifest)}/inputs"):
            if not isinstance(item, dict) or not _is_str(item.get("manifest"), is_id):
                raise self._strange("an input", "manifest", item)
            if item.get("version") is not None:
                self._checked_version(item["version"])
            found.append(cast(wire.Input, item))
        return found

    def dependents(self, project: str, manifest: str) -> list[wire.Dependent]:
        return [self._checked_version(v) for v in
                self._all(f"{self._p(project)}/versions/{_seg(manifest)}/dependents")]

    # -- answers checked before anything uses them --
    #
    # Names, ordinals, versions and ids a remote answers become paths on this machine (the
    # local record of versions, class files, a clone's folder, the store's objects): a
    # hostile or broken remote must not name a path of its choosing.

    def _strange(self, what: str, field: str, value: Any) -> RemoteError:
        return RemoteError(f"the remote at {self.url} answered {what} whose {field} cannot "
                           f"be one: {str(value)[:200]!r}", "tell the server's administrator")

    def _checked_version(self, v: Any) -> Any:
        if not isinstance(v, dict):
            raise self._strange("a version", "form", v)
        for field, good in (("class", lambda x: _is_str(x, CLASS_NAME_RE.match)),
                            ("ordinal", _is_ordinal),
                            ("version", lambda x: _is_str(x, VERSION_RE.match)),
                            ("manifest", lambda x: _is_str(x, is_id)),
                            ("tree", lambda x: _is_str(x, is_id)),
                            ("parent", lambda x: x is None or _is_str(x, is_id))):
            if field in v and not good(v[field]):
                raise self._strange("a version", field, v[field])
        if "manifest" not in v or "version" not in v:
            raise self._strange("a version", "form", v)
        return v

    def _checked_asset(self, a: Any) -> Any:
        if not isinstance(a, dict):
            raise self._strange("an asset", "form", a)
        if not _is_str(a.get("class"), CLASS_NAME_RE.match):
            raise self._strange("an asset", "class", a.get("class"))
        if not _is_ordinal(a.get("ordinal")):
            raise self._strange("an asset", "ordinal", a.get("ordinal"))
        if a.get("latest") is not None:
            self._checked_version(a["latest"])
        return a

    def _checked_class(self, c: Any) -> Any:
        if not isinstance(c, dict) or not _is_str(c.get("name"), CLASS_NAME_RE.match):
            raise self._strange("a class", "name", c.get("name") if isinstance(c, dict) else c)
        return c

    # -- administration --

    def users(self) -> list[wire.AdminUser]:
        return list(self._all("/v1/admin/users"))

    def set_user_active(self, username: str, active: bool) -> wire.User:
        result: wire.User = self._call("PATCH", f"/v1/admin/users/{_seg(username)}",
                                            {"active": active})
        return result

    def members(self, project: str) -> list[wire.Member]:
        return list(self._all(self._p(project) + "/members"))

    def set_role(self, project: str, username: str, role: str) -> wire.Role:
        result: wire.Role = self._call(
            "PUT", f"{self._p(project)}/members/{_seg(username)}", {"role": role})
        return result

    def remove_member(self, project: str, username: str) -> None:
        self._call("DELETE", f"{self._p(project)}/members/{_seg(username)}")

    def tokens(self) -> list[wire.TokenInfo]:
        return list(self._all("/v1/auth/tokens"))

    def revoke_token_id(self, token_id: int) -> None:
        self._call("DELETE", f"/v1/auth/tokens/{int(token_id)}")

    def audit(self, user: str | None = None, project: str | None = None,
              action: str | None = None, since: str | None = None,
              until: str | None = None) -> Iterator[wire.AuditEntry]:
        """The audit log, newest first, page after page as it is read."""
        query = {k: v for k, v in (("user", user), ("project", project), ("action", action),
                                   ("since", since), ("until", until)) if v is not None}
        return self._all("/v1/admin/audit", query)

    # -- objects --

    def batch(self, project: str, operation: str, objects: list[wire.ObjectRequest],
              packs: bool = False) -> wire.Negotiation:
        """Negotiate a transfer: per id, nothing to do, an action, or an error. With
        ``packs``, an upload that will send the objects in packs asks only which ones the
        remote lacks (they get the remote's own href, no presigned URL).

        Returns ``{"objects": [...]}``, one entry per object asked about, in order. The
        remote is asked for the compact answer (negotiation format 1), which it sends
        without an action per object; it is expanded here into the same entries.
        """
        path = self._p(project) + "/objects/batch"
        body: wire.BatchRequest = {"operation": operation, "objects": objects, "compact": 1}
        if packs:
            body["packs"] = 1
        response = self._request("POST", path, body)
        # Thousands of fresh dicts, none in a cycle: pausing the cyclic garbage collector
        # while they are made saves it walking them again and again (two thirds of the
        # client's time). Another thread's pause may overlap ours; the collector is back on
        # after both.
        paused = gc.isenabled()
        gc.disable()
        try:
            result: Any = self._decode(response, "POST", path)  # untrusted until checked
            if isinstance(result, dict) and result.get("compact") == 1:
                try:
                    return wire.expand(cast(wire.CompactNegotiation, result), operation,
                                       objects)
                except KeyError as e:
                    raise RemoteError(
                        f"the remote at {self.url} did not answer for object {e.args[0]} in "
                        "its negotiation", "run the command again; if it repeats, tell the "
                        "server's administrator") from None
            # A hostile remote must not make an upload send an object it was not asked
            # about: any other object of the store (the bytes of a proxy file, say).
            asked = {item["id"] for item in objects}
            for item in result.get("objects") or () if isinstance(result, dict) else ():
                if not isinstance(item, dict) or item.get("id") not in asked:
                    raise RemoteError(
                        f"the remote at {self.url} answered its negotiation for an object "
                        "it was not asked about; nothing was sent for it",
                        "tell the server's administrator")
            return result
        finally:
            if paused:
                gc.enable()

    def verify(self, project: str, ids: list[str]) -> wire.Verification:
        """Ask the remote to check objects uploaded straight to its storage.

        The remote is given a quarter of this transport's read timeout to answer in: ids it
        did not begin by then come back ``{"id", "pending": True}``, to be asked again, so
        that no call waits on the whole list's reads (ama-protocol(7)).
        """
        result: wire.Verification = self._call(
            "POST", self._p(project) + "/objects/verify",
            {"ids": ids, "seconds": self.timeout[1] / 4})
        return result

    def send_pack(self, project: str, name: str, path: str | os.PathLike[str],
                  size: int) -> wire.PackAnswer:
        """Send the pack ``name`` (ama-format(5) PACKS) in the file at ``path``: announce
        it, PUT it, and have the remote check it unless its own PUT did. Returns
        ``{"id","size","objects"}``; raises ValidationFailed when the remote refused it."""
        packs = self._p(project) + "/packs"
        answer: wire.PackAnswer = self._call("POST", packs, {"id": name, "size": size})
        actions = answer.get("actions") or {}
        if "upload" not in actions:
            return answer  # the remote holds it already
        action = actions["upload"]
        headers = {**dict(action.get("headers") or {}), "Content-Length": str(size)}
        with open(path, "rb") as f:
            # 412 from a storage: a try whose answer was lost; verify reads what is there.
            response = self._send(action.get("method", "PUT"), action["href"], accept=(412,),
                                  headers=headers, data=f)
        try:
            if "verify" not in actions:  # the remote's own PUT checked the pack
                put: wire.PackAnswer = self._decode(response, "PUT", action["href"])
                return put
        finally:
            response.close()
        checked: wire.PackAnswer = self._call("POST", f"{packs}/{_seg(name)}/verify", {})
        return checked

    def upload(self, action: Mapping[str, Any], path: str | os.PathLike[str],
               on_bytes: Callable[[int], None] | None = None) -> None:
        """Stream the file at ``path`` to an upload action's href; ``on_bytes`` hears of
        each chunk sent (once, however often a retry sends it)."""
        from ama.plumbing.multipart import Window

        size = os.stat(path).st_size
        headers = {**dict(action.get("headers") or {}), "Content-Length": str(size)}
        with open(path, "rb") as f:
            # An empty file object would make requests send a chunked body, which neither
            # presigned URLs nor our server accept; say it is empty instead.
            # A retry sends the file again from its start (urllib3 seeks back to where it
            # began). 412: the storage holds the key already, a try whose answer was lost
            # or someone else's upload; the remote's verify hashes what is there.
            body = f if on_bytes is None else Window(f, 0, size, on_bytes)
            self._send(action.get("method", "PUT"), action["href"], accept=(412,),
                       headers=headers, data=body if size else b"").close()

    def download(self, action: Mapping[str, Any], oid: str, path: str | os.PathLike[str],
                 on_bytes: Callable[[int], None] | None = None, size: int = MAX_UNSIZED
                 ) -> int:
        """Stream a download action's href into ``path``, hashing as it comes; return the
        size. ``on_bytes`` gets the length of each chunk written. Raises
        :class:`CorruptObject` (and removes ``path``) if the bytes are not ``oid``, and
        RemoteError once more than ``size`` bytes came (a body that does not end, or
        decodes to more than was asked for, does not fill the disk)."""
        import requests
        from blake3 import blake3

        hasher = blake3()
        total = 0
        response = self._send(action.get("method", "GET"), action["href"],
                              headers=dict(action.get("headers") or {}), stream=True)
        try:
            with open(path, "wb") as f:
                for chunk in response.iter_content(CHUNK):
                    total += len(chunk)
                    if total > size:
                        raise RemoteError(f"{_public(action['href'])} answered more than the "
                                          f"{size} bytes of object {oid}",
                                          "run the command again")
                    hasher.update(chunk)
                    f.write(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
        except requests.RequestException as e:
            Path(path).unlink(missing_ok=True)
            raise Unreachable(f"download of object {oid} from {_public(action['href'])} "
                              f"broke off: {e}", "run the command again") from None
        except BaseException:
            Path(path).unlink(missing_ok=True)
            raise
        finally:
            response.close()
        actual = hasher.hexdigest()
        if actual != oid:
            Path(path).unlink(missing_ok=True)
            raise CorruptObject(oid, _public(action["href"]), actual)
        return total

    def read_range(self, action: Mapping[str, Any], oid: str, start: int, length: int) -> bytes:
        """Return ``length`` bytes of object ``oid`` from ``start`` through a download
        action's href, with an HTTP ``Range`` request. These bytes cannot be hashed against
        the id; the answer is checked to be exactly the range asked for. Raises
        :class:`RemoteError` when it is not, and :class:`Unreachable` when it broke off."""
        return b"".join(self._range(action, oid, start, length))

    def write_range(self, action: Mapping[str, Any], oid: str, start: int, length: int,
                    fd: int, written: Callable[[int], None] | None = None) -> None:
        """Write the bytes :meth:`read_range` would return into the open file ``fd`` at
        offset ``start``, chunk by chunk as they arrive: a range of a large object is never
        held whole; ``written`` is told the length of each chunk once it is in the file. On
        an error the range is partly written, and is to be fetched again. One of the
        ranges of a large object: a storage that answers it with the whole object is
        refused (skipping to each range would read the object again and again)."""
        write_at(fd, self._range(action, oid, start, length, skip=False), start, written)

    def _range(self, action: Mapping[str, Any], oid: str, start: int,
               length: int, skip: bool = True) -> Iterator[bytes]:
        import requests
        from urllib3.exceptions import HTTPError

        end = start + length - 1
        headers = {**dict(action.get("headers") or {}), "Range": f"bytes={start}-{end}"}
        response = self._send(action.get("method", "GET"), action["href"], headers=headers,
                              stream=True)
        try:
            yield from self._answer_chunks(response, action, oid, start, length, skip)
        except (requests.RequestException, HTTPError) as e:
            raise Unreachable(f"reading bytes {start}-{end} of {oid} from "
                              f"{_public(action['href'])} broke off: {e}",
                              "run the command again") from None
        finally:
            response.close()

    def _answer_chunks(self, response: requests.Response, action: Mapping[str, Any],
                       oid: str, start: int, length: int, skip: bool = True
                       ) -> Iterator[bytes]:
        """The ``length`` bytes from ``start`` that ``response`` to a Range request holds,
        in chunks; raises RemoteError when it holds another range, fewer bytes or more.
        A whole object answered instead is skipped to the range, with ``skip``."""
        end = start + length - 1
        given = 0
        if response.status_code == 206:
            expected = f"bytes {start}-{end}/"
            if not response.headers.get("Content-Range", "").startswith(expected):
                raise RemoteError(f"{_public(action['href'])} answered the range "
                                  f"{response.headers.get('Content-Range')!r} of object "
                                  f"{oid} for bytes {start}-{end}")
            while given < length:
                chunk: bytes = response.raw.read(min(CHUNK, length - given),
                                                 decode_content=True)
                if not chunk:
                    break
                given += len(chunk)
                yield chunk
            over = bool(response.raw.read(1, decode_content=True)) if given == length else False
        elif start > 0 and not skip:
            # A server that ignores Range sends the whole object: skipping to the range
            # would read every byte before it, for each range of a large object.
            raise RemoteError(f"{_public(action['href'])} answered a request for bytes "
                              f"{start}-{end} of object {oid} with HTTP "
                              f"{response.status_code}, not a range",
                              "the remote's storage must answer Range requests (206)")
        else:
            # A server that ignores Range sends the whole object: skip to the range.
            skipped = 0
            for chunk in response.iter_content(CHUNK):
                if skipped + len(chunk) > start:
                    piece = chunk[max(0, start - skipped):][:length - given]
                    given += len(piece)
                    yield piece
                    if given >= length:
                        break
                skipped += len(chunk)
            over = False
        if given != length or over:
            raise RemoteError(f"{_public(action['href'])} answered "
                              f"{'more than ' if over else ''}{given} bytes of object "
                              f"{oid} for a range of {length}", "run the command again")

    # -- large objects in parts (ama.plumbing.multipart) --

    def start_multipart(self, project: str, oid: str, size: int
                        ) -> wire.MultipartUpload | wire.ObjectAnswer:
        """Open or find again the upload in parts of object ``oid``: the parts to send, or
        ``{id, size, verified}`` when the remote holds it."""
        result: wire.MultipartUpload | wire.ObjectAnswer = self._call(
            "POST", f"{self._p(project)}/objects/{_seg(oid)}/multipart", {"size": size})
        return result

    def upload_part(self, action: Mapping[str, Any], path: str | os.PathLike[str],
                    offset: int, size: int,
                    on_bytes: Callable[[int], None] | None = None) -> None:
        """Send ``size`` bytes of the file at ``path`` from ``offset`` to a part's action;
        ``on_bytes`` hears of each chunk sent (once, however often a retry sends it)."""
        from ama.plumbing.multipart import Window

        headers = {**dict(action.get("headers") or {}), "Content-Length": str(size)}
        with open(path, "rb") as f:
            # 412: a part stored create-only already (a try whose answer was lost, or
            # another client's upload of the same object); the remote hashes what is there.
            self._send(action.get("method", "PUT"), action["href"], accept=(412,),
                       headers=headers,
                       data=Window(f, offset, size, on_bytes) if size else b"").close()

    def complete_multipart(self, project: str, oid: str,
                           upload_id: str | None) -> wire.ObjectAnswer:
        """Have the remote join the parts into object ``oid``: it answers ``pending`` and
        hashes the object after, or ``verified`` when it held the object already."""
        result: wire.ObjectAnswer = self._call(
            "POST", f"{self._p(project)}/objects/{_seg(oid)}/multipart/complete",
            {"upload_id": upload_id})
        return result


def _tried(tries: int) -> str:
    return f" (after {tries} tries)" if tries > 1 else ""


def _dumps(body: Any) -> bytes:
    return orjson.dumps(body)


def _loads(data: bytes) -> Any:
    return orjson.loads(data)


_STATUS_ERRORS: dict[int, type[AmaError]] = {
    400: BadInput, 401: Unauthenticated, 403: Forbidden, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 415: UnsupportedMediaType, 422: ValidationFailed,
    502: Unreachable, 503: Unreachable, 504: Unreachable,
}
_HINTS: dict[int, str] = {
    401: "log in with 'ama auth login', or check AMA_TOKEN",
    403: "ask an admin of the project for a role that allows this",
}


def _is_str(value: Any, good: Callable[[str], Any]) -> bool:
    return isinstance(value, str) and bool(good(value))


def _is_ordinal(value: Any) -> bool:
    return type(value) is int and value >= 1


def _error_from(response: requests.Response, url: str) -> AmaError:
    """Rebuild the error a remote (or a storage service behind a transfer href) answered."""
    status = response.status_code
    cls = _STATUS_ERRORS.get(status, RemoteError)
    # Untrusted: a storage service behind a transfer href answers errors of its own.
    error: Mapping[str, Any] = {}
    try:
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
    except ValueError:
        pass
    message = error.get("message") or f"HTTP {status} {response.reason} from {_public(url)}"
    hint = error.get("hint") or _HINTS.get(status)
    if cls is Conflict:
        return Conflict(message, hint, latest=error.get("latest"))
    if cls is ValidationFailed:
        return ValidationFailed(message, hint, problems=error.get("problems"))
    return cls(message, hint)
