"""How the client talks to a remote: the :class:`Transport` interface and its HTTP
implementation over ``requests`` (DESIGN §4, §5).

``requests`` is imported when an HTTP transport is built, not with this module: a command
on a ``file://`` remote (or none) never pays for loading it.

The in-process implementation for ``file://`` remotes lives with the porcelain, which is the
only client code allowed to import the remote. Both raise the errors defined here (or the
plumbing's :class:`NotFound` and :class:`BadInput`), so a caller handles one set of errors
whatever the remote, and each carries the exit code of DESIGN §6.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote, urlsplit, urlunsplit

import orjson

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
from ama.plumbing.hashing import CHUNK
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


# -- the interface --------------------------------------------------------------------------


class Transport(Protocol):
    """The calls a client makes to a remote. Lists are complete (pages are followed);
    ``action`` arguments are the per-object actions that :meth:`batch` returned."""

    url: str

    def signup(self, username: str, email: str) -> dict[str, Any]: ...
    def rotate_token(self) -> str: ...
    def revoke_token(self) -> None: ...
    def me(self) -> dict[str, Any]: ...
    def projects(self) -> list[dict[str, Any]]: ...
    def project(self, project: str) -> dict[str, Any]: ...
    def classes(self, project: str) -> list[dict[str, Any]]: ...
    def get_class(self, project: str, name: str) -> dict[str, Any]: ...
    def put_class(self, project: str, name: str, description: str = "",
                  schema: dict[str, Any] | None = None, rules: Any = None,
                  visualisation: Any = None) -> dict[str, Any]: ...
    def assets(self, project: str, cls: str) -> Iterator[dict[str, Any]]: ...
    def asset(self, project: str, cls: str, name: str) -> dict[str, Any]: ...
    def update_asset(self, project: str, cls: str, name: str, title: str | None = None,
                     description: str | None = None,
                     tags: list[str] | None = None) -> dict[str, Any]: ...
    def versions(self, project: str, cls: str, asset: str) -> list[dict[str, Any]]: ...
    def version_size(self, project: str, cls: str, asset: str, version: str) -> dict[str, Any]: ...
    def commit(self, project: str, cls: str, asset: int | None, parent: str | None,
               manifest: str, idempotency_key: str, bump: str = "patch") -> dict[str, Any]: ...
    def put_alias(self, project: str, cls: str, alias: str, asset: int,
                  **expected: int | None) -> dict[str, Any]: ...
    def delete_alias(self, project: str, cls: str, alias: str) -> None: ...
    def find(self, project: str, hash: str | None = None, alias: str | None = None,
             cls: str | None = None, blob: str | None = None) -> list[dict[str, Any]]: ...
    def inputs(self, project: str, manifest: str) -> list[dict[str, Any]]: ...
    def dependents(self, project: str, manifest: str) -> list[dict[str, Any]]: ...
    def batch(self, project: str, operation: str,
              objects: list[dict[str, Any]]) -> dict[str, Any]: ...
    def verify(self, project: str, ids: list[str]) -> dict[str, Any]: ...
    def upload(self, action: Mapping[str, Any], path: str | os.PathLike[str]) -> None: ...
    def download(self, action: Mapping[str, Any], oid: str,
                 path: str | os.PathLike[str]) -> int: ...


@runtime_checkable
class LocalTransfer(Protocol):
    """What a transport to a remote on this machine (``file://``) adds to :class:`Transport`:
    objects move as files in bulk, a whole operation at once, instead of one request each.
    Callers use these when a transport has them (``isinstance(t, LocalTransfer)``)."""

    def send_files(self, project: str, files: list[tuple[str, int, str]],
                   progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Store (id, size, path) files in the remote; it verifies each and skips those it
        holds. Returns ``{"objects": [{"id","size","verified","stored"} | {"id","error"}]}``."""
        ...

    def receive_files(self, project: str, objects: list[tuple[str, int]], odb: Any,
                      progress: Callable[[int], None] | None = None) -> int:
        """Bring (id, size) objects into the object database ``odb`` (inside the caller's
        ``odb.batch()``), each re-hashed before it enters; return how many were added.
        Raises NotFound naming an object the remote does not hold."""
        ...


# -- HTTP -----------------------------------------------------------------------------------

DEFAULT_TIMEOUT = (10.0, 120.0)  # (connect, read between bytes) in seconds
_TRUE = ("1", "true", "yes", "on")


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


class HttpTransport:
    """The :class:`Transport` to an ``ama-server`` at ``url`` (``http(s)://host[:port]``).

    ``address`` is the server's IP address, used instead of resolving the host name when
    ``ASSET_SERVER_SKIP_DNS`` is true in ``environ``. ``session`` may be injected (tests,
    connection reuse); connection failures are retried a few times, answers never are.
    ``pool_size`` connections per host are kept open for reuse: as many as the threads
    that transfer at once, so none is closed and opened again for each object.
    """

    def __init__(self, url: str, token: str | None = None, address: str | None = None,
                 environ: Mapping[str, str] | None = None,
                 session: requests.Session | None = None,
                 timeout: tuple[float, float] = DEFAULT_TIMEOUT, retries: int = 3,
                 pool_size: int = 10) -> None:
        import requests
        from requests.adapters import HTTPAdapter
        from urllib3.util.retry import Retry

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise BadInput(f"remote URL {url!r} is not http(s)://host[:port]")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()
        retry = Retry(total=retries, connect=retries, read=0, status=0, other=0, redirect=0,
                      backoff_factor=0.2, raise_on_status=False)
        if skip_dns(environ):
            if not address:
                raise BadInput(
                    f"ASSET_SERVER_SKIP_DNS is set but no address is configured for {self.url}",
                    "log in again to record it, or run 'ama config set server.ip IP'")
            adapter: HTTPAdapter = _pinned_adapter(parts.hostname, address,
                                                   max_retries=retry, pool_maxsize=pool_size)
        else:
            adapter = HTTPAdapter(max_retries=retry, pool_maxsize=pool_size)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._origin = (parts.scheme, parts.netloc.lower())

    # -- plumbing of the transport itself --

    def _headers_for(self, url: str) -> dict[str, str]:
        parts = urlsplit(url)
        # The token goes only to the server itself, never to a storage service's presigned URL.
        if self.token and (parts.scheme, parts.netloc.lower()) == self._origin:
            return {"Authorization": f"Bearer {self.token}"}
        return {}

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        import requests

        headers = {**self._headers_for(url), **kwargs.pop("headers", {})}
        try:
            response = self.session.request(method, url, headers=headers, timeout=self.timeout,
                                            **kwargs)
        except requests.Timeout:
            raise Unreachable(f"the remote at {_public(url)} did not answer in time",
                              "check the network, or try again later") from None
        except requests.ConnectionError as e:
            reason = getattr(e.args[0], "reason", e.args[0]) if e.args else e
            raise Unreachable(f"cannot connect to the remote at {_public(url)}: {reason}",
                              "check the remote URL and the network") from None
        if response.status_code >= 400:
            try:
                raise _error_from(response, url)
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

    def _all(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        page: int | None = 1
        while page is not None:
            answer = self._call("GET", path, params={**(params or {}), "page": page})
            yield from answer["items"]
            page = answer.get("next_page")

    def _p(self, project: str) -> str:
        return f"/v1/projects/{_seg(project)}"

    def _c(self, project: str, cls: str) -> str:
        return f"{self._p(project)}/classes/{_seg(cls)}"

    # -- auth --

    def signup(self, username: str, email: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/auth/signup",
                                            {"username": username, "email": email})
        return result

    def rotate_token(self) -> str:
        """Exchange our token for a fresh one (the old one stops working); return it."""
        token: str = self._call("POST", "/v1/auth/token", {})["token"]
        self.token = token
        return token

    def revoke_token(self) -> None:
        self._call("DELETE", "/v1/auth/token")

    def login_settings(self) -> dict[str, Any]:
        """Return what browser login needs (issuer, client id, scopes); raises NotFound
        when the remote has no browser login."""
        result: dict[str, Any] = self._call("GET", "/v1/auth/oidc")
        return result

    def login(self, grant_type: str, **fields: Any) -> dict[str, Any]:
        """Exchange a login grant (an ID token, …) for a token; keep it and return
        ``{"token", "username"}``."""
        result: dict[str, Any] = self._call("POST", "/v1/auth/token",
                                            {"grant_type": grant_type, **fields})
        self.token = result["token"]
        return result

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/auth/me")
        return result

    # -- projects, classes, assets --

    def projects(self) -> list[dict[str, Any]]:
        return list(self._all("/v1/projects"))

    def project(self, project: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", self._p(project))
        return result

    def classes(self, project: str) -> list[dict[str, Any]]:
        return list(self._all(self._p(project) + "/classes"))

    def get_class(self, project: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", self._c(project, name))
        return result

    def put_class(self, project: str, name: str, description: str = "",
                  schema: dict[str, Any] | None = None, rules: Any = None,
                  visualisation: Any = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", self._c(project, name), {
            "description": description, "schema": schema, "rules": rules,
            "visualisation": visualisation})
        return result

    def assets(self, project: str, cls: str) -> Iterator[dict[str, Any]]:
        return self._all(self._c(project, cls) + "/assets")

    def asset(self, project: str, cls: str, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"{self._c(project, cls)}/assets/{_seg(name)}")
        return result

    def update_asset(self, project: str, cls: str, name: str, title: str | None = None,
                     description: str | None = None,
                     tags: list[str] | None = None) -> dict[str, Any]:
        body = {k: v for k, v in (("title", title), ("description", description), ("tags", tags))
                if v is not None}
        result: dict[str, Any] = self._call(
            "PATCH", f"{self._c(project, cls)}/assets/{_seg(name)}", body)
        return result

    def versions(self, project: str, cls: str, asset: str) -> list[dict[str, Any]]:
        return list(self._all(f"{self._c(project, cls)}/assets/{_seg(asset)}/versions"))

    def version_size(self, project: str, cls: str, asset: str, version: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET", f"{self._c(project, cls)}/assets/{_seg(asset)}/versions/{_seg(version)}/size")
        return result

    def commit(self, project: str, cls: str, asset: int | None, parent: str | None,
               manifest: str, idempotency_key: str, bump: str = "patch") -> dict[str, Any]:
        """Record ``manifest`` as the next version; raises :class:`Conflict` (someone uploaded
        first) or :class:`ValidationFailed` (objects missing, class rules broken)."""
        result: dict[str, Any] = self._call("POST", self._c(project, cls) + "/versions", {
            "asset": asset, "parent": parent, "manifest": manifest,
            "idempotency_key": idempotency_key, "bump": bump})
        return result

    def put_alias(self, project: str, cls: str, alias: str, asset: int,
                  **expected: int | None) -> dict[str, Any]:
        # expected=ordinal (or None: "no such alias yet") makes it a compare-and-swap.
        result: dict[str, Any] = self._call(
            "PUT", f"{self._c(project, cls)}/aliases/{_seg(alias)}", {"asset": asset, **expected})
        return result

    def delete_alias(self, project: str, cls: str, alias: str) -> None:
        self._call("DELETE", f"{self._c(project, cls)}/aliases/{_seg(alias)}")

    # -- finding and lineage --

    def find(self, project: str, hash: str | None = None, alias: str | None = None,
             cls: str | None = None, blob: str | None = None) -> list[dict[str, Any]]:
        query = {k: v for k, v in (("hash", hash), ("alias", alias), ("class", cls),
                                   ("blob", blob)) if v is not None}
        return list(self._all(self._p(project) + "/find", query))

    def inputs(self, project: str, manifest: str) -> list[dict[str, Any]]:
        return list(self._all(f"{self._p(project)}/versions/{_seg(manifest)}/inputs"))

    def dependents(self, project: str, manifest: str) -> list[dict[str, Any]]:
        return list(self._all(f"{self._p(project)}/versions/{_seg(manifest)}/dependents"))

    # -- objects --

    def batch(self, project: str, operation: str,
              objects: list[dict[str, Any]]) -> dict[str, Any]:
        """Negotiate a transfer: per id, nothing to do, an action, or an error.

        Returns ``{"objects": [...]}``, one entry per object asked about, in order. The
        remote is asked for the compact answer (negotiation format 1), which it sends
        without an action per object; it is expanded here into the same entries.
        """
        path = self._p(project) + "/objects/batch"
        response = self._request("POST", path, {"operation": operation, "objects": objects,
                                                "compact": 1})
        # Thousands of fresh dicts, none in a cycle: pausing the cyclic garbage collector
        # while they are made saves it walking them again and again (two thirds of the
        # client's time). Another thread's pause may overlap ours; the collector is back on
        # after both.
        paused = gc.isenabled()
        gc.disable()
        try:
            result: dict[str, Any] = self._decode(response, "POST", path)
            if isinstance(result, dict) and result.get("compact") == 1:
                return _expand_batch(result, operation, objects, self.url)
            return result
        finally:
            if paused:
                gc.enable()

    def verify(self, project: str, ids: list[str]) -> dict[str, Any]:
        """Ask the remote to check objects uploaded straight to its storage."""
        result: dict[str, Any] = self._call("POST", self._p(project) + "/objects/verify",
                                            {"ids": ids})
        return result

    def upload(self, action: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
        """Stream the file at ``path`` to an upload action's href."""
        size = os.stat(path).st_size
        headers = {**dict(action.get("headers") or {}), "Content-Length": str(size)}
        with open(path, "rb") as f:
            # An empty file object would make requests send a chunked body, which neither
            # presigned URLs nor our server accept; say it is empty instead.
            self._send(action.get("method", "PUT"), action["href"], headers=headers,
                       data=f if size else b"").close()

    def download(self, action: Mapping[str, Any], oid: str, path: str | os.PathLike[str]) -> int:
        """Stream a download action's href into ``path``, hashing as it comes; return the
        size. Raises :class:`CorruptObject` (and removes ``path``) if the bytes are not ``oid``."""
        import requests
        from blake3 import blake3

        hasher = blake3()
        total = 0
        response = self._send(action.get("method", "GET"), action["href"],
                              headers=dict(action.get("headers") or {}), stream=True)
        try:
            with open(path, "wb") as f:
                for chunk in response.iter_content(CHUNK):
                    hasher.update(chunk)
                    f.write(chunk)
                    total += len(chunk)
        except requests.RequestException as e:
            Path(path).unlink(missing_ok=True)
            raise Unreachable(f"download of object {oid} from {_public(action['href'])} "
                              f"broke off: {e}", "run the command again") from None
        finally:
            response.close()
        actual = hasher.hexdigest()
        if actual != oid:
            Path(path).unlink(missing_ok=True)
            raise CorruptObject(oid, _public(action["href"]), actual)
        return total


def _expand_batch(answer: Mapping[str, Any], operation: str,
                  objects: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """Turn a compact negotiation answer (format 1) into one entry per object asked about,
    in the order asked: ``{"id","size"}`` for an object the remote holds, ``{"id","size",
    "actions"}`` for one to transfer, ``{"id","error"}`` for one it refused."""
    listed = {item["id"]: item for item in answer.get("objects") or ()}
    present: Mapping[str, int] = answer.get("present") or {}
    transfer: Mapping[str, Any] = answer.get("transfer") or {}
    own: Mapping[str, int] = transfer.get("objects") or {}
    head, _, tail = str(transfer.get("href", "")).partition("{id}")
    method, expires = transfer.get("method"), transfer.get("expires")
    headers = dict(transfer.get("headers") or {})
    expanded: list[dict[str, Any]] = []
    add = expanded.append
    for item in objects:
        oid = item["id"]
        if oid in own:
            add({"id": oid, "size": own[oid], "actions": {operation: {
                "href": head + oid + tail, "method": method, "headers": dict(headers),
                "expires": expires}}})
        elif oid in present:
            add({"id": oid, "size": present[oid]})
        elif oid in listed:
            add(listed[oid])
        else:
            raise RemoteError(f"the remote at {url} did not answer for object {oid} in its "
                              "negotiation", "run the command again; if it repeats, tell "
                              "the server's administrator")
    return {"objects": expanded}


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


def _error_from(response: requests.Response, url: str) -> AmaError:
    """Rebuild the error a remote (or a storage service behind a transfer href) answered."""
    status = response.status_code
    cls = _STATUS_ERRORS.get(status, RemoteError)
    error: dict[str, Any] = {}
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
