"""Logging in to a remote: sign-up, browser login, tokens and logout (``ama auth``).

Tokens live in ``$AMA_HOME/credentials`` (INI text, one section per remote URL, mode 0600 in
a 0700 folder); ``AMA_TOKEN`` overrides the stored token for one command.

Browser login is OpenID Connect as a native app (RFC 8252): the remote says which issuer
and client to use (``GET /v1/auth/oidc``); this module discovers the issuer's endpoints,
listens once on ``http://127.0.0.1:<random port>/callback``, sends the browser to the
authorization endpoint with PKCE (S256), ``state`` and a nonce that is the SHA-256 of a
secret kept here, exchanges the code it receives for an ID token, and hands the ID token
and the secret to the remote, which verifies both and answers with an ama token
(see ``ama_remote.oidc`` for the server's side). authlib does the OAuth work.

Which remote: a URL given by the caller (``--remote``) or in ``AMA_REMOTE``; named remotes
(``ama remote``) plug in at :func:`remote_url`.
"""

from __future__ import annotations

import base64
import configparser
import hashlib
import html
import io
import os
import secrets
import threading
import webbrowser
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import parse_qs, urlsplit

from ama.plumbing import wire
from ama.plumbing.errors import NOT_ALLOWED, UNREACHABLE, AmaError, BadInput
from ama.plumbing.store import home_dir
from ama.plumbing.transport import HttpTransport, Unauthenticated

CREDENTIALS_FILE = "credentials"
LOGIN_TIMEOUT = 300.0
HTTP_TIMEOUT = 30.0


class NotLoggedIn(AmaError):
    """No token is stored for the remote (and AMA_TOKEN is not set)."""

    exit_code = NOT_ALLOWED


class LoginFailed(AmaError):
    """The browser login did not complete: refused, timed out, or answered wrongly."""

    exit_code = NOT_ALLOWED


class IssuerUnreachable(AmaError):
    """The identity provider cannot be reached."""

    exit_code = UNREACHABLE


# -- which remote ----------------------------------------------------------------------------

def remote_url(remote: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Return the URL of the remote to log in to: ``remote`` (a URL or the name of a
    remote), else ``AMA_REMOTE``, else the default remote.

    Raises BadInput for a ``file://`` remote (it needs no login) and a malformed URL, and
    :class:`~ama.porcelain.remotes.UnknownRemote` for an unknown name.
    """
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import get

    environ = os.environ if environ is None else environ
    url = (remote or environ.get("AMA_REMOTE") or "").strip()
    if url and "://" not in url:
        url = get(Config.open(environ), url).url  # a remote name (ama remote add)
    if not url:
        url = get(Config.open(environ)).url  # the default remote
    if url.startswith("file://"):
        raise BadInput(f"{url} is a local remote: it needs no login",
                       "name a server: --remote NAME or --remote https://HOST")
    scheme = url.partition("://")[0].lower()
    if scheme not in ("http", "https"):
        raise BadInput(f"remote URL {url!r} is not http(s)://host[:port]")
    return url.rstrip("/")


# -- credentials -----------------------------------------------------------------------------

class Credentials:
    """The tokens this machine holds, per remote URL, in ``$AMA_HOME/credentials``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @classmethod
    def open(cls, environ: Mapping[str, str] | None = None) -> Credentials:
        return cls(home_dir(environ) / CREDENTIALS_FILE)

    def _read(self) -> configparser.ConfigParser:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string(self.path.read_text(encoding="utf-8"), str(self.path))
        except FileNotFoundError:
            pass
        except (OSError, configparser.Error) as e:
            raise BadInput(f"cannot read {self.path}: {e}",
                           "fix the file, or remove it and log in again") from None
        return parser

    def get(self, url: str) -> dict[str, str] | None:
        """Return ``{"token", "username"}`` stored for ``url``, or None."""
        parser = self._read()
        if not parser.has_section(url) or not parser.get(url, "token", fallback=""):
            return None
        return dict(parser.items(url))

    def put(self, url: str, token: str, username: str) -> None:
        """Store ``token`` for ``url``, replacing any other."""
        parser = self._read()
        if not parser.has_section(url):
            parser.add_section(url)
        parser.set(url, "token", token)
        parser.set(url, "username", username)
        self._write(parser)

    def remove(self, url: str) -> bool:
        """Forget the token of ``url``; return whether there was one."""
        parser = self._read()
        if not parser.remove_section(url):
            return False
        self._write(parser)
        return True

    def _write(self, parser: configparser.ConfigParser) -> None:
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        # The folder holds secrets now: only its owner may list or enter it.
        os.chmod(folder, 0o700)
        text = io.StringIO()
        parser.write(text)
        temp = folder / f".{self.path.name}.{secrets.token_hex(6)}"
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text.getvalue())
                f.flush()
                os.fsync(f.fileno())
            os.replace(temp, self.path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise


def current_token(url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the token to use for ``url``: ``AMA_TOKEN``, else the stored one, else None."""
    environ = os.environ if environ is None else environ
    if environ.get("AMA_TOKEN"):
        return environ["AMA_TOKEN"]
    stored = Credentials.open(environ).get(url)
    return stored["token"] if stored else None


def _transport(url: str, token: str | None, environ: Mapping[str, str]) -> HttpTransport:
    address = None
    try:
        from ama.porcelain.config import Config

        address = Config.open(environ).get("server.ip") or None
    except AmaError:
        pass
    return HttpTransport(url, token=token, address=address, environ=environ)


class Account(TypedDict):
    """Who a login is for: the remote, the user there, and the projects they may use."""

    remote: str
    username: str
    email: str | None
    projects: list[wire.ProjectRole]


class AccountToken(Account):
    """An account with the token it is logged in with (``ama auth info``)."""

    token: str


class LoggedOut(TypedDict):
    """What ``ama auth logout`` did: revoked the token on the remote, forgot it here."""

    remote: str
    revoked: bool
    forgotten: bool


def _account(url: str, transport: HttpTransport) -> Account:
    me = transport.me()
    return {"remote": url, "username": me["username"], "email": me.get("email"),
            "projects": me.get("projects", [])}


# -- the verbs -------------------------------------------------------------------------------

def signup(url: str, username: str, email: str,
           environ: Mapping[str, str] | None = None) -> wire.User:
    """Ask ``url`` for an account; return the user (``active`` says whether an admin must
    activate it first)."""
    environ = os.environ if environ is None else environ
    return _transport(url, None, environ).signup(username, email)


def login_with_token(url: str, token: str,
                     environ: Mapping[str, str] | None = None) -> Account:
    """Check ``token`` against ``url``, store it, and return the account: ``remote``,
    ``username``, ``email``, ``projects``. Raises Unauthenticated for a bad token."""
    environ = os.environ if environ is None else environ
    token = token.strip()
    if not token:
        raise BadInput("the token is empty", "print one with 'ama auth info --token'")
    account = _account(url, _transport(url, token, environ))
    Credentials.open(environ).put(url, token, account["username"])
    return account


def nonce_hash(raw: str) -> str:
    """The nonce sent to the provider for the secret ``raw``: base64url(SHA-256(raw))."""
    digest = hashlib.sha256(raw.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


class _Callback:
    """A one-shot HTTP server on 127.0.0.1 that waits for the provider's redirect."""

    PAGE = ("<!doctype html><html><head><meta charset='utf-8'><title>ama</title></head>"
            "<body><p>{}</p></body></html>")

    def __init__(self) -> None:
        self.url: str | None = None
        self.done = threading.Event()
        callback = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
                parts = urlsplit(self.path)
                if parts.path != "/callback" or callback.done.is_set():
                    self.send_error(404)
                    return
                query = parse_qs(parts.query)
                if "error" in query:
                    text = "Login was refused: " + query["error"][0] + ". You can close this tab."
                else:
                    text = "You are logged in to ama. You can close this tab."
                body = callback.PAGE.format(html.escape(text)).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                callback.url = f"http://127.0.0.1:{callback.port}{self.path}"
                callback.done.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query carries the code: never log it

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}/callback"

    def __enter__(self) -> _Callback:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def wait(self, timeout: float) -> str:
        if not self.done.wait(timeout):
            raise LoginFailed(f"no answer from the browser within {int(timeout)} seconds",
                              "run 'ama auth login' again, or log in with a token: "
                              "'ama auth login --token TOKEN'")
        assert self.url is not None
        return self.url


def _issuer_metadata(issuer: str) -> wire.JSONObject:
    import requests

    from ama.plumbing.transport import plain_session

    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        # The issuer is the remote's to name: no ~/.netrc login goes to it.
        response = plain_session().get(url, timeout=HTTP_TIMEOUT)
        response.raise_for_status()
        data = response.json()
    except (requests.RequestException, ValueError) as e:
        raise IssuerUnreachable(f"cannot read the login settings of {issuer} at {url}: {e}",
                                "check the network, or log in with a token") from None
    for key in ("authorization_endpoint", "token_endpoint"):
        if not isinstance(data.get(key), str):
            raise IssuerUnreachable(f"the OpenID configuration at {url} has no {key}")
    return dict(data)


def browser_login(url: str, show_url: Callable[[str], None],
                  open_browser: Callable[[str], bool] = webbrowser.open,
                  timeout: float = LOGIN_TIMEOUT,
                  environ: Mapping[str, str] | None = None) -> Account:
    """Log in to ``url`` in a browser; store the token and return the account.

    ``show_url`` receives the authorization URL (for a user whose browser does not open by
    itself); ``open_browser`` opens it. Raises LoginFailed (refused, timed out, a state that
    does not match), NotFound (the remote has no browser login), IssuerUnreachable, and the
    remote's refusal (Unauthenticated, Forbidden) with its reason.
    """
    from authlib.common.errors import AuthlibBaseError
    from authlib.common.security import generate_token
    from authlib.integrations.requests_client import OAuth2Session

    environ = os.environ if environ is None else environ
    transport = _transport(url, None, environ)
    settings = transport.login_settings()
    metadata = _issuer_metadata(settings["issuer"])
    secret = settings.get("client_secret")
    raw_nonce = secrets.token_urlsafe(32)
    verifier = generate_token(64)
    with _Callback() as callback:
        session = OAuth2Session(
            settings["client_id"], secret, scope=settings.get("scopes", "openid email"),
            redirect_uri=callback.redirect_uri, code_challenge_method="S256",
            token_endpoint_auth_method="client_secret_post" if secret else "none")
        authorize_url, state = session.create_authorization_url(
            metadata["authorization_endpoint"], code_verifier=verifier,
            nonce=nonce_hash(raw_nonce))
        show_url(authorize_url)
        try:
            open_browser(authorize_url)
        except webbrowser.Error:
            pass  # the URL was shown: the user can open it by hand
        answer = callback.wait(timeout)
    query = parse_qs(urlsplit(answer).query)
    if "error" in query:
        reason = query.get("error_description", query["error"])[0]
        raise LoginFailed(f"{settings['issuer']} refused the login: {reason}",
                          "run 'ama auth login' again")
    try:
        tokens = session.fetch_token(metadata["token_endpoint"], authorization_response=answer,
                                     state=state, code_verifier=verifier)
    except AuthlibBaseError as e:
        raise LoginFailed(f"{settings['issuer']} did not complete the login: {e}",
                          "run 'ama auth login' again") from None
    except OSError as e:
        raise IssuerUnreachable(f"cannot reach {metadata['token_endpoint']}: {e}") from None
    id_token = tokens.get("id_token")
    if not id_token:
        raise LoginFailed(f"{settings['issuer']} sent no ID token",
                          "check that the server's oidc_scopes include 'openid'")
    granted = transport.login(settings.get("grant_type", "oidc"), id_token=id_token,
                              nonce=raw_nonce)
    account = _account(url, transport)
    Credentials.open(environ).put(url, granted["token"], account["username"])
    return account


def info(url: str, environ: Mapping[str, str] | None = None) -> AccountToken:
    """Return the account behind the current token of ``url``, with the ``token`` itself.
    Raises NotLoggedIn, or Unauthenticated when the remote no longer takes the token."""
    environ = os.environ if environ is None else environ
    token = current_token(url, environ)
    if not token:
        raise NotLoggedIn(f"not logged in to {url}", "run 'ama auth login'")
    account = _account(url, _transport(url, token, environ))
    return {**account, "token": token}


def logout(url: str, environ: Mapping[str, str] | None = None) -> LoggedOut:
    """Revoke the stored token of ``url`` on the remote and forget it here.

    Returns ``{"remote", "revoked", "forgotten"}``: a token the remote already refuses is
    still forgotten. Raises NotLoggedIn when there is nothing to log out of.
    """
    environ = os.environ if environ is None else environ
    credentials = Credentials.open(environ)
    stored = credentials.get(url)
    token = environ.get("AMA_TOKEN") or (stored["token"] if stored else None)
    if not token:
        raise NotLoggedIn(f"not logged in to {url}")
    revoked = True
    try:
        _transport(url, token, environ).revoke_token()
    except Unauthenticated:
        revoked = False  # expired or revoked already: nothing left to revoke
    forgotten = stored is not None and stored["token"] == token and credentials.remove(url)
    return {"remote": url, "revoked": revoked, "forgotten": forgotten}


__all__ = ["Account", "AccountToken", "Credentials", "IssuerUnreachable", "LoggedOut",
           "LoginFailed", "NotLoggedIn", "browser_login", "current_token", "info",
           "login_with_token", "logout", "nonce_hash", "remote_url", "signup"]
