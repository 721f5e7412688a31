"""The dashboard's page resources, one per page, each calling the service as its user."""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Any
from urllib.parse import unquote

import falcon

from ama.plumbing import wire
from ama.plumbing.hashing import check_id, is_id
from ama_remote.dashboard import previews
from ama_remote.dashboard.pages import (
    ASSETS_PER_PAGE,
    FILES_PER_PAGE,
    IMAGE_TYPES,
    LOGIN_COOKIE,
    RAW_CSP,
    SESSION_COOKIE,
    SESSION_TTL,
    Page,
    _Request,
    cookie_name,
    drop_cookie,
    href,
    secure_headers,
    set_cookie,
    site_path,
    static_file,
)
from ama_remote.errors import Forbidden, NotFound, Unauthenticated
from ama_remote.service.browse import ASSET_SORTS


def _asset_name(name: str) -> int | str:
    return int(name) if name.isascii() and name.isdigit() and len(name) < 19 else name


def _safe_next(target: str | None) -> str:
    # Only a path of this site: "//host" or "/\host" would send the user elsewhere, and so
    # would "/<TAB>/host" in a page's link (a browser drops tabs and newlines from a URL).
    # Under a path (a proxy's, or ama dashboard's), "PATH/../x" would leave it for another
    # site of the same host: no dot segment, even %-encoded, and no backslash.
    home = site_path()
    if not target or not target.startswith(home) or target[1:2] in ("/", "\\") \
            or not target.isprintable():
        return home
    path = unquote(target.partition("?")[0].partition("#")[0])
    if "\\" in path or any(part in (".", "..") for part in path.split("/")):
        return home
    return target


# A name a download may be given: a file name's own characters only (no quote, no path).
_DOWNLOAD_NAME = re.compile(r"[A-Za-z0-9._+-]{1,200}")


class Static(Page):
    needs_login = False

    def get(self, request: _Request, resp: falcon.Response, filename: str) -> None:
        found = static_file(filename)
        if found is None:
            raise NotFound(f"no file {filename!r} here")
        resp.data, resp.content_type = found
        resp.set_header("Cache-Control", "max-age=3600")


class Login(Page):
    """Sign in by pasting a token (or go to the issuer, :mod:`ama_remote.dashboard.oidc`);
    the session is a token of its own, revoked at sign-out."""

    needs_login = False

    def get(self, request: _Request, resp: falcon.Response, error: str | None = None,
            next_page: str | None = None) -> None:
        # Before a session there is nothing to derive a CSRF token from: the form carries a
        # random value that must equal a SameSite=Strict cookie another site cannot set.
        nonce = secrets.token_urlsafe(24)
        set_cookie(request.req, resp, LOGIN_COOKIE, nonce, 600)
        from ama_remote.dashboard.oidc import issuer_name

        oidc = self.dash.oidc
        issuer = oidc.settings.issuer if oidc and oidc.settings else None
        self.dash.render(resp, "login.html", request, status=401 if error else 200,
                         login_csrf=nonce, issuer=issuer_name(issuer) if issuer else None,
                         next=_safe_next(next_page or request.param("next")),
                         error=error)

    def post(self, request: _Request, resp: falcon.Response) -> None:
        nonce = request.req.cookies.get(cookie_name(request.req, LOGIN_COOKIE), "")
        sent = request.form.get("csrf", "")
        if not nonce or not hmac.compare_digest(nonce.encode(), sent.encode()):
            raise Forbidden("the sign-in form's CSRF token is missing or wrong",
                            "reload the sign-in page and try again")
        try:
            caller = self.service.authenticate(request.form.get("token", "").strip())
        except Unauthenticated as e:
            self.get(request, resp, error=e.message, next_page=request.form.get("next"))
            return
        session = self.service.issue_token(caller.username, ttl=SESSION_TTL)
        set_cookie(request.req, resp, SESSION_COOKIE, session, SESSION_TTL)
        drop_cookie(request.req, resp, LOGIN_COOKIE)
        self.redirect(_safe_next(request.form.get("next")))


class Once(Page):
    """The one-time login link ``ama dashboard`` prints; it leads to ``next`` (``ama class
    init NAME --edit``: the class editor), else to the projects.

    It answers with a page that moves on by itself, not with a redirect: the browser is
    sent here by a page in a file (the link itself is not on the browser's command line),
    and a SameSite=Strict cookie is not sent on a redirect that another site started."""

    needs_login = False

    def get(self, request: _Request, resp: falcon.Response) -> None:
        once = self.dash.one_time
        if once is None or not once.redeem(request.param("key") or ""):
            raise Forbidden("this login link is not valid, or was used already",
                            "restart 'ama dashboard' for a new link")
        session = self.service.issue_token(once.username, ttl=SESSION_TTL)
        set_cookie(request.req, resp, SESSION_COOKIE, session, SESSION_TTL)
        request.caller = self.service.authenticate(session)
        request.session = session
        self.dash.render(resp, "signed_in.html", request,
                         next=_safe_next(request.param("next")))


class Logout(Page):
    def post(self, request: _Request, resp: falcon.Response) -> None:
        assert request.session is not None
        self.service.revoke_token(request.session)
        drop_cookie(request.req, resp, SESSION_COOKIE)
        self.redirect(href("login"))


class Home(Page):
    def get(self, request: _Request, resp: falcon.Response) -> None:
        projects = self.service.list_projects(request.caller)
        self.dash.render(resp, "home.html", request, projects=projects)


class ProjectPage(Page):
    def get(self, request: _Request, resp: falcon.Response, project: str) -> None:
        found = self.service.get_project(request.caller, project)
        classes = self.service.list_classes(request.caller, project)
        self.dash.render(resp, "project.html", request, project=found, classes=classes)


class ClassPage(Page):
    def get(self, request: _Request, resp: falcon.Response, project: str, cls: str) -> None:
        klass = self.service.get_class(request.caller, project, cls)
        sort = request.param("sort") or "ordinal"
        filters = {k: (request.param(k) or "") for k in ("tag", "alias", "owner", "since",
                                                         "until")}
        descending = request.param("order") == "desc"
        page = request.number("page")
        listed = self.service.browse_assets(
            request.caller, project, cls, sort=sort, descending=descending, page=page,
            per_page=ASSETS_PER_PAGE, **{k: v or None for k, v in filters.items()})
        self.dash.render(resp, "class.html", request, project=project, klass=klass,
                         listed=listed, sort=sort, descending=descending, filters=filters,
                         page=page, sorts=ASSET_SORTS)


def _lineage(project: str, center: str, inputs: list[wire.Input],
             dependents: list[wire.Dependent]) -> dict[str, Any]:
    """Boxes and lines of the lineage graph: inputs left, the version, dependents right."""
    row, width, gap = 40, 220, 80
    height = max(len(inputs), len(dependents), 1) * row + 10

    def node(x: int, y: int, label: str, sub: str, link: str | None) -> dict[str, Any]:
        return {"x": x, "y": y, "w": width, "label": label, "sub": sub, "href": link}

    def version_link(v: wire.Version | None) -> str | None:
        if not v:
            return None
        return href("p", project, "c", v["class"], "a", v["ordinal"], "v", v["version"])

    mid = (height - 30) // 2
    middle_x = width + gap
    nodes = [node(middle_x, mid, center, "this version", None)]
    lines = []
    for n, item in enumerate(inputs):
        y = 5 + n * row
        nodes.append(node(0, y, item["name"], item.get("label") or "input",
                          version_link(item.get("version"))))
        lines.append((width, y + 15, middle_x, mid + 15))
    for n, dependent in enumerate(dependents):
        y = 5 + n * row
        x = 2 * (width + gap)
        nodes.append(node(x, y, f"{dependent['name']}/{dependent['version']}",
                          dependent.get("label") or "dependent", version_link(dependent)))
        lines.append((middle_x + width, mid + 15, x, y + 15))
    return {"width": 3 * width + 2 * gap, "height": height, "nodes": nodes, "lines": lines}


class AssetPage(Page):
    def get(self, request: _Request, resp: falcon.Response, project: str, cls: str,
            name: str) -> None:
        caller = request.caller
        role = self.role(request, project)
        asset = self.service.get_asset(caller, project, cls, _asset_name(name))
        versions = self.service.list_versions(caller, project, cls, asset["ordinal"])[::-1]
        totals = self.service.version_totals(caller, project, cls, asset["ordinal"])
        lineage = None
        latest = asset.get("latest")
        if latest:
            inputs = self.service.inputs(caller, project, latest["manifest"])
            dependents = self.service.dependents(caller, project, latest["manifest"])
            if inputs or dependents:
                lineage = _lineage(project, f"{asset['name']}/{latest['version']}", inputs,
                                   dependents)
        self.dash.render(resp, "asset.html", request, project=project, cls=cls, asset=asset,
                         versions=versions, totals=totals, lineage=lineage,
                         can_edit=self.may(role, "writer"))

    def post(self, request: _Request, resp: falcon.Response, project: str, cls: str,
             name: str) -> None:
        form = request.form
        tags = [t.strip() for t in form.get("tags", "").split(",") if t.strip()]
        asset = self.service.update_asset(
            request.caller, project, cls, _asset_name(name), title=form.get("title"),
            description=form.get("description"), tags=tags)
        self.redirect(href("p", project, "c", cls, "a", asset["ordinal"]))


class VersionPage(Page):
    def get(self, request: _Request, resp: falcon.Response, project: str, cls: str,
            name: str, version: str) -> None:
        caller = request.caller
        page = request.number("page")
        klass = self.service.get_class(caller, project, cls)
        found = self.service.version_files(caller, project, cls, _asset_name(name), version,
                                           page=page, per_page=FILES_PER_PAGE,
                                           folder=request.param("path") or "")
        shown = []
        for item, show, rows in previews.plan(klass.get("visualisation"), found["files"]):
            head = b""
            if show != "image":
                stream, _size = self.service.open_object(caller, project, item["id"])
                try:
                    head = stream.read(previews.HEAD_BYTES)
                finally:
                    stream.close()
            shown.append(previews.render(item, show, rows, head))
        described = found["version"]
        self.dash.render(resp, "version.html", request, project=project, cls=cls,
                         found=found, v=described, page=page, previews=shown,
                         clone=f"ama clone {described['name']}/{described['version']}",
                         image_types=IMAGE_TYPES)


class Diff(Page):
    def get(self, request: _Request, resp: falcon.Response, project: str, cls: str,
            name: str) -> None:
        caller = request.caller
        asset = self.service.get_asset(caller, project, cls, _asset_name(name))
        versions = [v["version"] for v in
                    self.service.list_versions(caller, project, cls, asset["ordinal"])]
        old = request.param("from") or (versions[-2] if len(versions) > 1 else None)
        new = request.param("to") or (versions[-1] if versions else None)
        diff = None
        if old and new:
            diff = self.service.diff_versions(caller, project, cls, asset["ordinal"], old, new)
        self.dash.render(resp, "diff.html", request, project=project, cls=cls, asset=asset,
                         versions=versions, old=old, new=new, diff=diff)


class Search(Page):
    """By alias, tree hash (an asset hash) or file id: a 64-hex text is tried as both."""

    def get(self, request: _Request, resp: falcon.Response, project: str) -> None:
        caller = request.caller
        query = (request.param("q") or "").strip()
        self.service.get_project(caller, project)  # NotFound before anything else
        results: list[dict[str, Any]] = []
        kind = None
        if query:
            if is_id(query.lower()):
                query = query.lower()
                results = [{**v, "match": "asset hash"}
                           for v in self.service.find(caller, project, hash=query)]
                results += [{**v, "match": "file"}
                            for v in self.service.find(caller, project, blob=query)]
                kind = "id"
            else:
                results = [{**v, "match": "alias"}
                           for v in self.service.find(caller, project, alias=query)]
                kind = "alias"
        self.dash.render(resp, "search.html", request, project=project, query=query,
                         results=results, kind=kind)


def _thumbnail(stream: Any, size: int, mime: str) -> tuple[str, bytes] | None:
    """The thumbnail ``ama report`` embeds, of the image in ``stream`` (read and closed):
    None when the image is not one Pillow can decode safely."""
    from ama.plumbing.thumbnails import thumbnail

    try:
        made = thumbnail(stream.read(size), mime)
    finally:
        stream.close()
    return None if isinstance(made, str) else made


def _thumbnails(size: int) -> bool:
    from ama.plumbing.thumbnails import THUMBNAIL_SOURCE_BYTES, pillow_available

    return size <= THUMBNAIL_SOURCE_BYTES and pillow_available()


class Raw(Page):
    """A file's bytes: as an image for a thumbnail, else as a download."""

    def get(self, request: _Request, resp: falcon.Response, project: str, oid: str) -> None:
        check_id(oid, "file id")
        filename = request.param("name") or oid
        suffix = "." + filename.rpartition(".")[2].lower()
        stream, size = self.service.open_object(request.caller, project, oid)
        secure_headers(resp, RAW_CSP)
        if request.param("view") == "image" and suffix in IMAGE_TYPES:
            # A thumbnail where Pillow can make one (the page shows images small), else the
            # original, which the browser decodes and scales as it did before.
            if _thumbnails(size):
                made = _thumbnail(stream, size, IMAGE_TYPES[suffix])
                if made is not None:
                    resp.content_type, resp.data = made
                    return
                stream, size = self.service.open_object(request.caller, project, oid)
            resp.content_type = IMAGE_TYPES[suffix]
        else:
            resp.content_type = "application/octet-stream"
            # A name from the link (a tree's path): a writer who sends a reader a link
            # chooses it, so it is only used when it is a plain file name.
            name = filename.rpartition("/")[2]
            resp.downloadable_as = name if _DOWNLOAD_NAME.fullmatch(name) \
                and name.strip(".") else oid
        resp.set_stream(stream, size)

