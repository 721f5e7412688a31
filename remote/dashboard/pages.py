"""The dashboard's pages: sessions, the page resources, and how they render and fail.

Each page resource is thin like the API's: it reads the request, calls the service as the
session's user and renders one Jinja2 template with autoescaping on. An error of the service
becomes an HTML page with the API's status for it (a project the user is not a member of is
a 404 that names nothing but what the user typed).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlencode

import falcon
import jinja2

from ama.plumbing import wire
from ama.plumbing.errors import AmaError, BadInput
from ama.plumbing.units import human_size
from ama_remote.errors import Forbidden, Unauthenticated, http_status
from ama_remote.service import Caller

if TYPE_CHECKING:
    from ama_remote.oidc import OidcLogin

SESSION_COOKIE = "ama_session"
LOGIN_COOKIE = "ama_login"
SESSION_TTL = 12 * 3600
MAX_FORM_BYTES = 64 * 1024
ASSETS_PER_PAGE = 50
FILES_PER_PAGE = 200
ROLE_RANK = {"reader": 1, "writer": 2, "admin": 3}

# Inline scripts and styles are refused, so an injected <script> or style="" does nothing;
# images may come only from this server (the version page's thumbnails), and scripts may
# ask only this server (the class editor's live checks).
CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
# A file's bytes are the users' own: served under a sandbox, nothing in them can run here.
RAW_CSP = "default-src 'none'; img-src 'self'; style-src 'none'; sandbox"
STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
               ".gif": "image/gif", ".webp": "image/webp"}


@dataclass
class OneTimeLogin:
    """A login link that signs ``username`` in once, without a token (``ama dashboard``)."""

    username: str
    key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    used: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def redeem(self, key: str) -> bool:
        """Return True the first time the right ``key`` is given, False ever after."""
        with self.lock:
            if self.used or not hmac.compare_digest(key.encode(), self.key.encode()):
                return False
            self.used = True
            return True


def csrf_token(session: str) -> str:
    """The CSRF token of a session: a form must send it back; a page of another site cannot
    read it, and it changes with every session."""
    return hmac.new(session.encode(), b"ama-dashboard-csrf", hashlib.sha256).hexdigest()


# The path the site is served under: "" at a host's root, a proxy's prefix, or the secret
# path of ``ama dashboard`` (whose cookies must go to no other server of 127.0.0.1, whatever
# its port). Set from each request's SCRIPT_NAME before its page is made.
_ROOT: ContextVar[str] = ContextVar("dashboard_root", default="")


def site_path() -> str:
    """The path of the site's home page, ending in "/": the path of its cookies too."""
    return _ROOT.get() + "/"


def secure_cookie(req: falcon.Request) -> bool:
    """Whether the browser came by HTTPS, so that a cookie set now must never go over plain
    HTTP: this server speaks HTTP behind a proxy that ends TLS, and says so in
    ``Forwarded`` or ``X-Forwarded-Proto`` (a client that claims it falsely only makes its
    own cookies Secure)."""
    return req.forwarded_scheme == "https"


def cookie_name(req: falcon.Request, name: str) -> str:
    """The name cookie ``name`` has for this request: ``__Host-`` before it when the browser
    came by HTTPS to a site at its host's root. A browser takes such a cookie only from
    this very host, Secure and for the whole host: a neighbour subdomain cannot plant one
    (the sign-in form's token, chosen by it, or a session of its own to sign the browser
    in as someone else), nor can a page over plain HTTP."""
    return f"__Host-{name}" if secure_cookie(req) and not _ROOT.get() else name


def set_cookie(req: falcon.Request, resp: falcon.Response, name: str, value: str,
               max_age: int, same_site: str = "Strict", path: str | None = None) -> None:
    """Set cookie ``name`` (:func:`cookie_name`), HttpOnly, Secure under HTTPS, for
    ``path`` (default: the site's; a ``__Host-`` cookie is for the whole host)."""
    _put_cookie(req, resp, name, value, same_site, path, max_age=max_age)


def drop_cookie(req: falcon.Request, resp: falcon.Response, name: str,
                same_site: str = "Strict", path: str | None = None) -> None:
    """Have the browser forget cookie ``name`` as :func:`set_cookie` set it (with its
    attributes: a browser ignores the removal of a ``__Host-`` cookie that is not Secure)."""
    _put_cookie(req, resp, name, "", same_site, path,
                expires=datetime(1970, 1, 1, tzinfo=timezone.utc))


def _put_cookie(req: falcon.Request, resp: falcon.Response, name: str, value: str,
                same_site: str, path: str | None, **lifetime: Any) -> None:
    full = cookie_name(req, name)
    resp.set_cookie(full, value, http_only=True, same_site=same_site,
                    secure=secure_cookie(req),
                    path="/" if full != name else path or site_path(), **lifetime)


def href(*parts: Any, **query: Any) -> str:
    """A path of this site from ``parts``, each quoted whole, with a query of the given
    non-empty values."""
    path = site_path() + "/".join(quote(str(p), safe="") for p in parts)
    kept = {k.rstrip("_"): v for k, v in query.items() if v not in (None, "", False)}
    return path + ("?" + urlencode(kept) if kept else "")


class _Request:
    """What a page handler gets: the request, the user and their session."""

    def __init__(self, req: falcon.Request, caller: Caller | None, session: str | None,
                 form: dict[str, str]) -> None:
        self.req, self.caller, self.session, self.form = req, caller, session, form

    def param(self, name: str) -> str | None:
        value = self.req.get_param(name)
        return value if isinstance(value, str) else None

    def number(self, name: str, default: int = 1) -> int:
        value = self.param(name)
        if value is None or value == "":
            return default
        if not (value.isascii() and value.isdigit()) or len(value) > 9 or int(value) < 1:
            raise BadInput(f"parameter '{name}' must be a positive integer, not {value[:40]!r}")
        return int(value)


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


class Dashboard:
    """The dashboard's shared state: the service, the templates and the one-time login."""

    def __init__(self, service: Any, one_time: OneTimeLogin | None = None,
                 oidc: OidcLogin | None = None) -> None:
        self.service = service
        self.one_time = one_time
        self.oidc = oidc
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("ama_remote.dashboard", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True,
            lstrip_blocks=True)
        self.templates.filters["size"] = human_size
        self.templates.globals["href"] = href

    def add_routes(self, app: falcon.App) -> None:
        from ama_remote.dashboard import admin, classes, oidc, views

        p = "/p/{project}"
        a = p + "/c/{cls}/a/{name}"
        for route, page in [
            ("/", views.Home), ("/login", views.Login), ("/login/once", views.Once),
            ("/logout", views.Logout), ("/static/{filename}", views.Static),
            (p, views.ProjectPage), (p + "/search", views.Search),
            (p + "/raw/{oid}", views.Raw), (p + "/c/{cls}", views.ClassPage),
            (a, views.AssetPage), (a + "/diff", views.Diff),
            (a + "/v/{version}", views.VersionPage),
            ("/admin", admin.AdminHome), ("/admin/users", admin.Users),
            ("/admin/audit", admin.Audit), ("/tokens", admin.Tokens),
            (p + "/members", admin.Members),
            ("/login/oidc", oidc.Start), (oidc.CALLBACK, oidc.Callback),
            (p + "/c/{cls}/edit", classes.ClassEditor),
            (p + "/c/{cls}/edit/check", classes.Check),
        ]:
            app.add_route(route, page(self))

    # -- answering ------------------------------------------------------------------------

    def render(self, resp: falcon.Response, template: str, request: _Request | None,
               status: int = 200, **context: Any) -> None:
        from ama_remote.dashboard.admin import may_administer

        caller = request.caller if request else None
        session = request.session if request else None
        resp.status = status
        resp.content_type = "text/html; charset=utf-8"
        resp.text = self.templates.get_template(template).render(
            user=caller.username if caller else None,
            admin_link=caller is not None and may_administer(self.service, caller),
            csrf=csrf_token(session) if session else "", **context)


def secure_headers(resp: falcon.Response, csp: str = CSP) -> None:
    resp.set_header("Content-Security-Policy", csp)
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("X-Frame-Options", "DENY")
    resp.set_header("Referrer-Policy", "same-origin")
    resp.set_header("Cache-Control", "no-store")


def read_form(req: falcon.Request) -> dict[str, str]:
    """The fields of a posted form (the last value of each); 400 if it is too large."""
    if req.method != "POST":
        return {}
    if (req.content_length or 0) > MAX_FORM_BYTES:
        raise BadInput(f"a form of more than {MAX_FORM_BYTES} bytes")
    raw = req.bounded_stream.read(MAX_FORM_BYTES + 1)
    if len(raw) > MAX_FORM_BYTES:
        raise BadInput(f"a form of more than {MAX_FORM_BYTES} bytes")
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in fields.items()}


Handler = Callable[[_Request, falcon.Response], None]


class Page:
    """A page: signs its user in from the session cookie, checks the CSRF token of a form,
    and turns the service's errors into pages. Subclasses define ``get`` and ``post``."""

    # The API's bearer-token middleware lets pages through: they check the session instead.
    public = True
    needs_login = True

    def __init__(self, dashboard: Dashboard) -> None:
        self.dash = dashboard
        self.service = dashboard.service

    def on_get(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        self._serve(req, resp, params, getattr(self, "get", None))

    def on_post(self, req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
        self._serve(req, resp, params, getattr(self, "post", None))

    def _serve(self, req: falcon.Request, resp: falcon.Response, params: dict[str, Any],
               handler: Callable[..., None] | None) -> None:
        secure_headers(resp)
        # Quoted as a path: a proxy's prefix goes into links, Location and cookie paths.
        root = _ROOT.set(quote(req.root_path.rstrip("/"), safe="/"))
        request = _Request(req, None, None, {})
        try:
            if handler is None:
                raise falcon.HTTPMethodNotAllowed(
                    ["GET"] + (["POST"] if hasattr(self, "post") else []))
            request.form = read_form(req)
            session = req.cookies.get(cookie_name(req, SESSION_COOKIE))
            if session:
                try:
                    request.caller = self.service.authenticate(session)
                    request.session = session
                except Unauthenticated:
                    request.caller = None
            if self.needs_login and request.caller is None:
                if req.method == "GET":
                    raise _Redirect(href("login", next=req.relative_uri))
                raise Forbidden("this form needs a signed-in session", "sign in again")
            if req.method == "POST" and self.needs_login:
                sent = request.form.get("csrf", "")
                if not (request.session and hmac.compare_digest(
                        sent.encode(), csrf_token(request.session).encode())):
                    raise Forbidden("the form's CSRF token is missing or wrong",
                                    "reload the page and send the form again")
            handler(request, resp, **params)
        except _Redirect as redirect:
            resp.status = falcon.HTTP_303
            resp.location = redirect.location
            resp.text = ""
        except AmaError as e:
            status = http_status(e)
            if status == 500:
                raise
            self.dash.render(resp, "error.html", request, status=status, message=e.message,
                             hint=e.hint)
        finally:
            _ROOT.reset(root)

    @staticmethod
    def redirect(location: str) -> None:
        raise _Redirect(location)

    def role(self, request: _Request, project: str) -> str:
        """The user's role in ``project`` (NotFound for a project they cannot see)."""
        assert request.caller is not None
        found: wire.Project = self.service.get_project(request.caller, project)
        return str(found["role"])

    @staticmethod
    def may(role: str, need: str) -> bool:
        return ROLE_RANK.get(role, 0) >= ROLE_RANK[need]


def static_file(filename: str) -> tuple[bytes, str] | None:
    """The bytes and type of a file shipped in the package's ``static`` folder, or None."""
    suffix = "." + filename.rpartition(".")[2]
    if "/" in filename or filename.startswith(".") or suffix not in STATIC_TYPES:
        return None
    entry = resources.files("ama_remote.dashboard") / "static" / filename
    if not entry.is_file():
        return None
    return entry.read_bytes(), STATIC_TYPES[suffix]
