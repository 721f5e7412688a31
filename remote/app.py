"""The HTTP face of the remote: the Falcon app serving the ``/v1`` API of docs/design.md §4.

Resources are thin: they parse the request, call the :class:`~ama_remote.service.Service`
and shape the answer. Errors are mapped to HTTP statuses in one place (:func:`_handle_ama_error`)
and every error body is ``{"error": {"code", "message", "hint"}}``.

``create_app(service, config)`` builds the app from its dependencies; ``get_app()`` builds
them from the environment and ``$AMA_SERVER_HOME/server.toml``, for gunicorn::

    gunicorn 'ama_remote.app:get_app()'
"""

from __future__ import annotations

import gc
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, TypedDict

import falcon
import falcon.media
import orjson

from ama.plumbing import wire
from ama.plumbing.errors import AmaError, BadInput
from ama.plumbing.hashing import check_id, is_id
from ama.plumbing.jsontext import MAX_INT, parse_json
from ama_remote.config import ServerConfig, load_config, open_service
from ama_remote.errors import PayloadTooLarge, UnsupportedMediaType, http_status
from ama_remote.service.admin import parse_moment
from ama_remote.service.multipart import MAX_PARTS
from ama_remote.storage.base import Bounded

log = logging.getLogger("ama_remote.app")

# A login method for POST /v1/auth/token: it receives the request's JSON body and returns the
# username it has proved (or raises Unauthenticated). OpenID Connect registers one here.
Grant = Callable[[wire.JSONObject], str]

ERROR_CODES: dict[int, str] = {
    400: "bad_input", 401: "unauthenticated", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 411: "length_required",
    413: "payload_too_large", 415: "unsupported_media_type", 422: "validation_failed",
    500: "internal", 503: "still_verifying", 507: "storage_full",
}
BUMPS = ("patch", "minor", "major")
# The longest a verify call that gives "seconds" goes on beginning objects.
VERIFY_SECONDS_MAX = 60.0


# -- request helpers -------------------------------------------------------------------------

def _json_body(req: falcon.Request, config: ServerConfig,
               optional: bool = False) -> wire.JSONObject:
    """Return the request's JSON object: 415 if not JSON, 413 if too large, 400 if malformed."""
    if optional and not req.content_length and req.content_type is None:
        return {}
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            f"{req.method} {req.path} takes a JSON body, not {media_type or 'no content type'}",
            "send the header 'Content-Type: application/json'")
    limit = config.max_request_bytes
    too_large = PayloadTooLarge(
        f"request body is larger than the {limit} bytes this server accepts",
        "send a smaller request, or ask the server's administrator to raise "
        "max_request_bytes")
    if req.content_length is not None and req.content_length > limit:
        raise too_large
    # A chunked body has no Content-Length, and Falcon's bounded stream then reads nothing:
    # read the server's own stream, which ends where the chunks end.
    chunked = "chunked" in (req.get_header("Transfer-Encoding") or "").lower()
    stream = req.stream if chunked and req.content_length is None else req.bounded_stream
    raw = stream.read(limit + 1)
    if len(raw) > limit:
        raise too_large
    body = parse_json(raw, "request body")
    if not isinstance(body, dict):
        raise BadInput("request body must be a JSON object")
    return body


_MISSING = object()


def _field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...],
           default: Any = _MISSING, nullable: bool = False, label: str | None = None) -> Any:
    """Return ``body[name]`` if it has type ``kind``; else 400 naming the field (as
    ``label``, for a field inside a list)."""
    value = body.get(name, _MISSING)
    name = label or name
    if value is _MISSING:
        if default is _MISSING:
            raise BadInput(f"field '{name}' is required")
        return default
    if value is None and nullable:
        return None
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python but never a valid count, ordinal or size here.
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds) + (" or null" if nullable else "")
        raise BadInput(f"field '{name}' must be {names}, not {type(value).__name__}")
    return value


def _int(value: str | None, name: str, default: int, low: int = 0,
         high: int = MAX_INT) -> int:
    """Return the decimal ``value`` of path or query parameter ``name`` (``default`` if it is
    absent); 400 naming it unless it is an integer from ``low`` to ``high``. Every number
    that comes in a path or a query goes through here."""
    if value is None or value == "":
        return default
    if not (value.isascii() and value.isdigit()) or len(value) > len(str(high)) \
            or not low <= int(value) <= high:
        raise BadInput(f"parameter '{name}' must be an integer from {low} to {high}, "
                       f"not {value[:40]!r}")
    return int(value)


def _ordinal(value: str) -> int | None:
    """An all-digit asset name is an ordinal (400 if it is out of range, or digits other
    than 0-9, such as '¹'), else None."""
    if not value.isdigit():
        return None
    return _int(value, "asset", 0, 0, MAX_INT)


def _version(value: str) -> str:
    """Return the version name ``value`` once each of its numbers is in range (400 naming
    the parameter otherwise); its form is the service's to check."""
    for part in value.split("."):
        if part.isdigit():
            _int(part, "version", 0, 0, MAX_INT)
    return value


class _Paging:
    def __init__(self, config: ServerConfig) -> None:
        self.config = config

    def params(self, req: falcon.Request) -> tuple[int, int]:
        per_page = _int(req.get_param("per_page"), "per_page", self.config.per_page, 1,
                        self.config.max_per_page)
        # The first item of the page, (page - 1) * per_page, must fit in the database's offset.
        page = _int(req.get_param("page"), "page", 1, 1, MAX_INT // self.config.max_per_page)
        return page, per_page

    def slice(self, req: falcon.Request, items: list[Any]) -> wire.Page:
        """Return one page of ``items`` as ``{"items", "next_page"}``."""
        page, per_page = self.params(req)
        start = (page - 1) * per_page
        chunk = items[start:start + per_page]
        return {"items": chunk, "next_page": page + 1 if start + per_page < len(items) else None}


# -- resources ------------------------------------------------------------------------------

class _Resource:
    public = False  # True: the auth middleware lets requests through without a token

    def __init__(self, service: Any, config: ServerConfig) -> None:
        self.service = service
        self.config = config
        self.paging = _Paging(config)


class OpenApi(_Resource):
    """GET: the OpenAPI document of this API (:mod:`ama_remote.openapi`)."""

    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        from ama_remote.openapi import DOCUMENT

        resp.media = DOCUMENT


class Signup(_Resource):
    public = True

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _json_body(req, self.config)
        resp.media = self.service.signup(_field(body, "username", str), _field(body, "email", str))
        resp.status = falcon.HTTP_201


class Token(_Resource):
    """POST: a fresh token, by rotating the caller's or by a login grant; DELETE: revoke it."""

    public = True  # POST checks the bearer token itself: a login grant has none yet

    def __init__(self, service: Any, config: ServerConfig, grants: Mapping[str, Grant]) -> None:
        super().__init__(service, config)
        self.grants = dict(grants)

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = _json_body(req, self.config, optional=True)
        grant_type = _field(body, "grant_type", str, default=None)
        if grant_type is None:
            # Rotation: the presented token is exchanged for a new one and stops working.
            token, username = self.service.rotate_token(_bearer(req))
        elif grant_type in self.grants:
            username = self.grants[grant_type](body)
            token = self.service.issue_token(username)
        else:
            known = ", ".join(sorted(self.grants)) or "none"
            raise BadInput(f"field 'grant_type' names an unknown login method {grant_type!r}",
                           f"this server knows: {known}; omit grant_type to rotate your token")
        answer: wire.Token = {"token": token, "username": username}
        resp.media = answer
        resp.status = falcon.HTTP_201

    def on_delete(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = _bearer(req)
        self.service.authenticate(token)
        self.service.revoke_token(token)
        resp.status = falcon.HTTP_204


class Me(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.service.me(req.context.caller)


class Projects(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.paging.slice(req, self.service.list_projects(req.context.caller))


class Project(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        resp.media = self.service.get_project(req.context.caller, project)


class _ClassFields(TypedDict):
    """The fields of a class that a request sets (all but its name)."""

    description: str
    schema: wire.JSONSchema | None
    rules: wire.ClassRules | None
    visualisation: Any


def _class_fields(body: Mapping[str, Any]) -> _ClassFields:
    return {
        "description": _field(body, "description", str, default=""),
        "schema": _field(body, "schema", dict, default=None, nullable=True),
        "rules": _field(body, "rules", (list, dict), default=None, nullable=True),
        "visualisation": _field(body, "visualisation", (list, dict), default=None, nullable=True),
    }


class Classes(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        resp.media = self.paging.slice(req, self.service.list_classes(req.context.caller, project))

    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        body = _json_body(req, self.config)
        resp.media = self.service.put_class(req.context.caller, project, _field(body, "name", str),
                                            **_class_fields(body))
        resp.status = falcon.HTTP_201


class Class(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str) -> None:
        resp.media = self.service.get_class(req.context.caller, project, cls)

    def on_put(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str) -> None:
        body = _json_body(req, self.config)
        resp.media = self.service.put_class(req.context.caller, project, cls, **_class_fields(body))


class Assets(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str) -> None:
        page, per_page = self.paging.params(req)
        deleted = _int(req.get_param("deleted"), "deleted", 0, 0, 1) == 1
        resp.media = self.service.list_assets(req.context.caller, project, cls, page=page,
                                              per_page=per_page, deleted=deleted)


def _asset_name(name: str) -> int | str:
    """An asset in a path is its ordinal or an alias."""
    ordinal = _ordinal(name)
    return name if ordinal is None else ordinal


class Asset(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
               name: str) -> None:
        resp.media = self.service.get_asset(req.context.caller, project, cls, _asset_name(name))

    def on_patch(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
                 name: str) -> None:
        body = _json_body(req, self.config)
        tags = _field(body, "tags", list, default=None, nullable=True)
        if tags is not None and not all(isinstance(t, str) for t in tags):
            raise BadInput("field 'tags' must be a list of strings")
        caller = req.context.caller
        resp.media = self.service.update_asset(
            caller, project, cls, _asset_name(name),
            title=_field(body, "title", str, default=None, nullable=True),
            description=_field(body, "description", str, default=None, nullable=True),
            tags=tags, status=_field(body, "status", str, default=None, nullable=True))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
                  name: str) -> None:
        resp.media = self.service.delete_asset(req.context.caller, project, cls,
                                               _asset_name(name))


class AssetRestore(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
                name: str) -> None:
        resp.media = self.service.delete_asset(req.context.caller, project, cls,
                                               _asset_name(name), restore=True)


class AssetVersions(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
               name: str) -> None:
        caller = req.context.caller
        ordinal = _asset_name(name)
        resp.media = self.paging.slice(
            req, self.service.list_versions(caller, project, cls, ordinal))


class VersionSize(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
               name: str, version: str) -> None:
        caller = req.context.caller
        ordinal = _asset_name(name)
        resp.media = self.service.version_size(caller, project, cls, ordinal,
                                               _version(version))


class Commit(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str) -> None:
        body = _json_body(req, self.config)
        asset = _field(body, "asset", int, nullable=True)
        parent = _field(body, "parent", str, nullable=True)
        manifest = check_id(_field(body, "manifest", str), "field 'manifest'")
        if parent is not None:
            check_id(parent, "field 'parent'")
        key = _field(body, "idempotency_key", str)
        if not 0 < len(key) <= 200:
            raise BadInput("field 'idempotency_key' must be 1 to 200 characters")
        bump = _field(body, "bump", str, default="patch")
        if bump not in BUMPS:
            raise BadInput(f"field 'bump' must be one of {', '.join(BUMPS)}, not {bump!r}")
        resp.media = self.service.commit(req.context.caller, project, cls, asset, parent,
                                         manifest, key, bump=bump)
        resp.status = falcon.HTTP_201


class Alias(_Resource):
    def on_put(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
               alias: str) -> None:
        body = _json_body(req, self.config)
        extra = {"expected": _field(body, "expected", int, nullable=True)} \
            if "expected" in body else {}
        resp.media = self.service.put_alias(req.context.caller, project, cls, alias,
                                            _field(body, "asset", int), **extra)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project: str, cls: str,
                  alias: str) -> None:
        self.service.delete_alias(req.context.caller, project, cls, alias)
        resp.status = falcon.HTTP_204


class Find(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        query = {"hash": req.get_param("hash"), "alias": req.get_param("alias"),
                 "cls": req.get_param("class"), "blob": req.get_param("blob")}
        if not any(query.values()):
            raise BadInput("find needs one of the parameters hash=, alias=, class= or blob=")
        resp.media = self.paging.slice(req, self.service.find(req.context.caller, project,
                                                              **query))


class Lineage(_Resource):
    """GET versions/{manifest}/inputs and …/dependents."""

    def __init__(self, service: Any, config: ServerConfig, direction: str) -> None:
        super().__init__(service, config)
        self.direction = direction

    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str,
               manifest: str) -> None:
        check_id(manifest, "manifest id")
        lookup = getattr(self.service, self.direction)
        resp.media = self.paging.slice(req, lookup(req.context.caller, project, manifest))


def _object_list(body: Mapping[str, Any]) -> list[wire.ObjectRequest]:
    """Return the batch request's ``objects``, each checked to have an id and a size;
    400 naming the first bad field. Well-formed items pass through as they came."""
    objects = _field(body, "objects", list)
    for item in objects:  # the common case, 100,000 good items: no call per item
        if (type(item) is not dict or type(item.get("id")) is not str
                or type(item.get("size")) is not int or item["size"] < 0
                or not is_id(item["id"])):
            break
    else:
        return objects
    for n, item in enumerate(objects):
        if not isinstance(item, dict):
            raise BadInput(f"field 'objects[{n}]' must be an object with 'id' and 'size'")
        check_id(_field(item, "id", str, label=f"objects[{n}].id"), f"field 'objects[{n}].id'")
        size = _field(item, "size", int, label=f"objects[{n}].size")
        if size < 0:
            raise BadInput(f"field 'objects[{n}].size' must not be negative")
    return objects


class Batch(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        # 100,000 ids are 100,000 fresh dicts in, and as many out; none forms a cycle, yet
        # each would set off the cyclic garbage collector, which then walks them all again
        # and again (half the time of a large negotiation). Pause it for this request.
        paused = gc.isenabled()
        gc.disable()
        try:
            self._negotiate(req, resp, project)
        finally:
            if paused:
                gc.enable()

    def _negotiate(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        body = _json_body(req, self.config)
        operation = _field(body, "operation", str)
        if operation not in ("upload", "download"):
            raise BadInput(f"field 'operation' must be upload or download, not {operation!r}")
        compact = _field(body, "compact", int, default=0)
        if compact not in (0, 1):
            raise BadInput(f"field 'compact' asks for negotiation format {compact}; this "
                           "server answers format 1, or the full answer without the field")
        # The file:// backend's hrefs are this server's own paths: the service makes them
        # absolute from the address the client used to reach us.
        packs = _field(body, "packs", int, default=0)
        if packs not in (0, 1):
            raise BadInput(f"field 'packs' must be 0 or 1, not {packs}")
        resp.media = self.service.batch(req.context.caller, project, operation,
                                        _object_list(body), href_prefix=req.forwarded_prefix,
                                        compact=bool(compact), packs=bool(packs))


class Verify(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        body = _json_body(req, self.config)
        ids = _field(body, "ids", list)
        # A client that can ask again gives a time to answer within; its ids not begun by
        # then are answered pending. The server's own cap keeps every call short of its
        # workers' timeout.
        seconds = _field(body, "seconds", (int, float), default=None, nullable=True)
        if seconds is not None:
            seconds = min(max(float(seconds), 0.0), VERIFY_SECONDS_MAX)
        resp.media = self.service.verify_objects(
            req.context.caller, project,
            [check_id(i if isinstance(i, str) else "", f"field 'ids[{n}]'")
             for n, i in enumerate(ids)], seconds=seconds)


class Multipart(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str,
                oid: str) -> None:
        body = _json_body(req, self.config)
        size = _field(body, "size", int)
        if size > self.config.max_object_bytes:
            raise PayloadTooLarge(f"an object of {size} bytes is larger than the "
                                  f"{self.config.max_object_bytes} bytes this server takes")
        resp.media = self.service.start_multipart(
            req.context.caller, project, check_id(oid, "the object id"), size,
            self.config.multipart_part_bytes, href_prefix=req.forwarded_prefix)


class MultipartPart(_Resource):
    def on_put(self, req: falcon.Request, resp: falcon.Response, project: str, oid: str,
               upload_id: str, number: str) -> None:
        size = req.content_length
        if size is None:
            raise falcon.HTTPLengthRequired(description="a part needs a Content-Length")
        if size > self.config.max_object_bytes:
            raise PayloadTooLarge(f"a part of {size} bytes is larger than the "
                                  f"{self.config.max_object_bytes} bytes this server takes")
        resp.media = self.service.put_part(
            req.context.caller, project, check_id(oid, "the object id"), upload_id,
            _int(number, "part number", 0, 1, MAX_PARTS), req.bounded_stream, size)
        resp.status = falcon.HTTP_201


class MultipartComplete(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str,
                oid: str) -> None:
        body = _json_body(req, self.config)
        resp.media = self.service.complete_multipart(
            req.context.caller, project, check_id(oid, "the object id"),
            _field(body, "upload_id", str, nullable=True))


class Object(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, oid: str) -> None:
        stream, size = self.service.open_object(req.context.caller, project, check_id(oid))
        _send_bytes(req, resp, stream, size)

    def on_put(self, req: falcon.Request, resp: falcon.Response, project: str, oid: str) -> None:
        check_id(oid)
        size = _content_length(req, self.config, f"object {oid}")
        resp.media = self.service.put_object(req.context.caller, project, oid,
                                             req.bounded_stream, size)
        resp.status = falcon.HTTP_201


# -- administration (every check is the service's) ----------------------------------------

class AdminUsers(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.paging.slice(req, self.service.users(req.context.caller))


class AdminUser(_Resource):
    def on_patch(self, req: falcon.Request, resp: falcon.Response, username: str) -> None:
        body = _json_body(req, self.config)
        resp.media = self.service.set_user_active(req.context.caller, username,
                                                  _field(body, "active", bool))


class AdminAudit(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        page, per_page = self.paging.params(req)
        resp.media = self.service.audit(
            req.context.caller, user=req.get_param("user"), project=req.get_param("project"),
            action=req.get_param("action"),
            since=parse_moment(req.get_param("since"), "since"),
            until=parse_moment(req.get_param("until"), "until"), page=page, per_page=per_page)


class Members(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        resp.media = self.paging.slice(req, self.service.members(req.context.caller, project))


class Member(_Resource):
    def on_put(self, req: falcon.Request, resp: falcon.Response, project: str,
               username: str) -> None:
        body = _json_body(req, self.config)
        resp.media = self.service.set_role(req.context.caller, project, username,
                                           _field(body, "role", str))

    def on_delete(self, req: falcon.Request, resp: falcon.Response, project: str,
                  username: str) -> None:
        self.service.remove_member(req.context.caller, project, username)
        resp.status = falcon.HTTP_204


class Tokens(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self.paging.slice(req, self.service.tokens(req.context.caller,
                                                                current=req.context.token))


class TokenById(_Resource):
    def on_delete(self, req: falcon.Request, resp: falcon.Response, token_id: str) -> None:
        self.service.revoke_token_id(req.context.caller, _int(token_id, "token", 0, 1))
        resp.status = falcon.HTTP_204


class Packs(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str) -> None:
        body = _json_body(req, self.config)
        pid = check_id(_field(body, "id", str), "field 'id'")
        size = _field(body, "size", int)
        if size > self.config.max_object_bytes:
            raise PayloadTooLarge(
                f"pack {pid} of {size} bytes is larger than the {self.config.max_object_bytes}"
                " bytes this server accepts",
                "ask the server's administrator to raise max_object_bytes")
        resp.media = self.service.announce_pack(req.context.caller, project, pid, size,
                                                href_prefix=req.forwarded_prefix)


class PackBytes(_Resource):
    def on_get(self, req: falcon.Request, resp: falcon.Response, project: str, pid: str) -> None:
        stream, size = self.service.open_pack(req.context.caller, project, check_id(pid))
        _send_bytes(req, resp, stream, size)

    def on_put(self, req: falcon.Request, resp: falcon.Response, project: str, pid: str) -> None:
        check_id(pid)
        size = _content_length(req, self.config, f"pack {pid}")
        resp.media = self.service.put_pack(req.context.caller, project, pid,
                                           req.bounded_stream, size)
        resp.status = falcon.HTTP_201


class PackVerify(_Resource):
    def on_post(self, req: falcon.Request, resp: falcon.Response, project: str,
                pid: str) -> None:
        resp.media = self.service.verify_pack(req.context.caller, project, check_id(pid))


def _content_length(req: falcon.Request, config: ServerConfig, what: str) -> int:
    """The length of an upload's body, refused before it is read when absent or over the
    server's ``max_object_bytes``."""
    size = req.content_length
    if size is None:
        raise falcon.HTTPLengthRequired(
            description="send the object's size in the Content-Length header")
    if size > config.max_object_bytes:
        raise PayloadTooLarge(
            f"{what} of {size} bytes is larger than the {config.max_object_bytes}"
            " bytes this server accepts",
            "ask the server's administrator to raise max_object_bytes")
    return size


def _send_bytes(req: falcon.Request, resp: falcon.Response, stream: Any, size: int) -> None:
    """Answer stored bytes, whole or the one range asked for."""
    resp.content_type = "application/octet-stream"
    resp.accept_ranges = "bytes"
    if req.range is None:
        resp.set_stream(stream, size)
        return
    # One range (ama-protocol(7)): a client reading part of a large file or of a pack.
    start, end = req.range
    if start < 0:
        start, end = max(0, size + start), size - 1
    end = size - 1 if end < 0 else min(end, size - 1)
    if start > end:
        stream.close()
        raise falcon.HTTPRangeNotSatisfiable(size)
    # A storage's stream may not seek (S3's body): read up to the range instead.
    if getattr(stream, "seekable", lambda: False)():
        stream.seek(start)
    else:
        skip = start
        while skip and (chunk := stream.read(min(skip, 1 << 20))):
            skip -= len(chunk)
    resp.status = falcon.HTTP_206
    resp.content_range = (start, end, size)
    resp.set_stream(Bounded(stream, end - start + 1), end - start + 1)


# -- auth and errors ------------------------------------------------------------------------

def _bearer(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class BearerAuth:
    """Authenticate every request to a non-public resource; the caller lands in
    ``req.context.caller`` and the token in ``req.context.token``."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def process_resource(self, req: falcon.Request, resp: falcon.Response, resource: Any,
                         params: dict[str, Any]) -> None:
        if resource is None or getattr(resource, "public", False):
            return
        req.context.token = _bearer(req)
        req.context.caller = self.service.authenticate(req.context.token)


def _error_body(status: int, message: str, hint: str | None, latest: str | None = None,
                problems: list[str] | None = None) -> wire.ErrorBody:
    error: wire.ErrorDetail = {"code": ERROR_CODES.get(status, "error"), "message": message,
                               "hint": hint}
    if latest is not None:
        error["latest"] = latest
    if problems is not None:
        error["problems"] = problems
    return {"error": error}


def _handle_ama_error(req: falcon.Request, resp: falcon.Response, ex: AmaError,
                      params: dict[str, Any]) -> None:
    status = http_status(ex)
    if status == 500:
        _handle_unexpected(req, resp, ex, params)
        return
    problems = getattr(ex, "problems", None)
    resp.status = status
    resp.media = _error_body(status, ex.message, ex.hint, latest=getattr(ex, "latest", None),
                             problems=list(problems) if problems else None)
    if status == 401:
        resp.set_header("WWW-Authenticate", 'Bearer realm="ama"')
    retry_after = getattr(ex, "retry_after", None)
    if isinstance(retry_after, int):
        resp.set_header("Retry-After", str(retry_after))


def _handle_unexpected(req: falcon.Request, resp: falcon.Response, ex: Exception,
                       params: dict[str, Any]) -> None:
    # The traceback goes to the server's log (path only: a query string may carry secrets);
    # the client learns nothing about the server's internals.
    log.error("internal error on %s %s", req.method, req.path, exc_info=ex)
    resp.status = 500
    resp.media = _error_body(500, "the server failed to handle this request",
                             "try again later; if it persists, tell the server's administrator")


def _serialize_http_error(req: falcon.Request, resp: falcon.Response,
                          ex: falcon.HTTPError) -> None:
    message = ex.title if not ex.description else f"{ex.title}: {ex.description}"
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(_error_body(ex.status_code, message, None))


# -- the app --------------------------------------------------------------------------------

def create_app(service: Any, config: ServerConfig,
               grants: Mapping[str, Grant] | None = None) -> falcon.App:
    """Return the Falcon app serving ``service`` under ``/v1``.

    ``grants`` maps a ``grant_type`` of ``POST /v1/auth/token`` to a login method; by
    default OpenID Connect registers itself there when ``config`` names a client
    (:mod:`ama_remote.oidc`). Without a grant type, that endpoint rotates the caller's token.
    """
    from ama_remote.oidc import login_grants

    oidc, oidc_grants = login_grants(service, config)
    grants = oidc_grants if grants is None else grants
    app = falcon.App(middleware=[BearerAuth(service)])
    # orjson: a negotiation of 100,000 ids is megabytes of JSON each way.
    handler = falcon.media.JSONHandler(dumps=orjson.dumps, loads=orjson.loads)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.req_options.strip_url_path_trailing_slash = True
    app.set_error_serializer(_serialize_http_error)
    app.add_error_handler(Exception, _handle_unexpected)
    app.add_error_handler(AmaError, _handle_ama_error)

    def r(cls: type[_Resource], *args: Any) -> _Resource:
        return cls(service, config, *args)

    p = "/v1/projects/{project}"
    c = p + "/classes/{cls}"
    routes: list[tuple[str, Any]] = [
        ("/v1/openapi.json", r(OpenApi)),
        ("/v1/auth/signup", r(Signup)),
        ("/v1/auth/token", r(Token, grants or {})),
        ("/v1/auth/me", r(Me)),
        ("/v1/auth/tokens", r(Tokens)),
        ("/v1/auth/tokens/{token_id}", r(TokenById)),
        ("/v1/admin/users", r(AdminUsers)),
        ("/v1/admin/users/{username}", r(AdminUser)),
        ("/v1/admin/audit", r(AdminAudit)),
        ("/v1/auth/oidc", oidc),
        ("/v1/projects", r(Projects)),
        (p, r(Project)),
        (p + "/classes", r(Classes)),
        (p + "/members", r(Members)),
        (p + "/members/{username}", r(Member)),
        (c, r(Class)),
        (c + "/assets", r(Assets)),
        (c + "/assets/{name}", r(Asset)),
        (c + "/assets/{name}/versions", r(AssetVersions)),
        (c + "/assets/{name}/restore", r(AssetRestore)),
        (c + "/assets/{name}/versions/{version}/size", r(VersionSize)),
        (c + "/versions", r(Commit)),
        (c + "/aliases/{alias}", r(Alias)),
        (p + "/find", r(Find)),
        (p + "/versions/{manifest}/inputs", r(Lineage, "inputs")),
        (p + "/versions/{manifest}/dependents", r(Lineage, "dependents")),
        (p + "/objects/batch", r(Batch)),
        (p + "/objects/verify", r(Verify)),
        (p + "/objects/{oid}", r(Object)),
        (p + "/objects/{oid}/multipart", r(Multipart)),
        (p + "/objects/{oid}/multipart/complete", r(MultipartComplete)),
        (p + "/objects/{oid}/multipart/{upload_id}/{number}", r(MultipartPart)),
        (p + "/packs", r(Packs)),
        (p + "/packs/{pid}", r(PackBytes)),
        (p + "/packs/{pid}/verify", r(PackVerify)),
    ]
    for template, resource in routes:
        app.add_route(template, resource)
    # The web dashboard: its pages at /, beside the API, over the same service; it signs in
    # with the same OpenID Connect issuer as the CLI.
    from ama_remote.dashboard import add_dashboard

    add_dashboard(app, service, oidc=oidc if oidc.settings else None)
    return app


def get_app(environ: Mapping[str, str] | None = None) -> falcon.App:
    """Return the app for this server's configuration (``AMA_SERVER_HOME``,
    ``AMA_DATABASE_URL``, ``server.toml``): the entry point for gunicorn."""
    config = load_config(environ)
    return create_app(open_service(config), config)
