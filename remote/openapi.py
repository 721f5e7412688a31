"""The OpenAPI 3 description of the ``/v1`` API, served at ``GET /v1/openapi.json``.

It is data kept beside the routes: a test compares its paths and methods with the routes
the app registers and with the routes ama-protocol(7) documents, and the bad-input suite
fuzzes every operation it describes, so the three cannot drift apart. The schemas say what
a well-formed request looks like (the fuzzer also sends ill-formed ones); the answers
are described by their status codes and the one error document.
"""

from __future__ import annotations

from typing import Any

from ama.plumbing.jsontext import JSONObject

_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_INT = {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
_NAME = {"type": "string", "minLength": 1}
_ERROR = {
    "description": "the error document of ama-protocol(7)",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}


def _path(*names: str) -> list[JSONObject]:
    return [{"name": n, "in": "path", "required": True, "schema": _NAME} for n in names]


_PAGED = [{"name": "page", "in": "query", "required": False, "schema": {**_INT, "minimum": 1}},
          {"name": "per_page", "in": "query", "required": False,
           "schema": {**_INT, "minimum": 1}}]


def _body(properties: JSONObject, required: tuple[str, ...] = ()) -> JSONObject:
    return {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "properties": properties, "required": list(required)}}}}


def _op(summary: str, ok: str, params: list[JSONObject] | None = None,
        body: JSONObject | None = None, public: bool = False,
        **extra: Any) -> JSONObject:
    op: JSONObject = {"summary": summary, "responses": {
        ok: {"description": "success"}, "4XX": _ERROR}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = body
    if public:
        op["security"] = []
    op.update(extra)
    return op


_P = "/v1/projects/{project}"
_C = _P + "/classes/{cls}"
_CLASS = {"description": {"type": "string"}, "schema": {"type": ["object", "null"]},
          "rules": {"type": ["object", "null"]},
          "visualisation": {"type": ["object", "array", "null"]}}

PATHS: dict[str, JSONObject] = {
    "/v1/openapi.json": {
        "get": _op("this document", "200", public=True)},
    "/v1/auth/signup": {
        "post": _op("sign up", "201", body=_body(
            {"username": _NAME, "email": _NAME}, ("username", "email")), public=True)},
    "/v1/auth/token": {
        "post": _op("rotate the caller's token, or log in with a grant", "201", body={
            "required": False, "content": {"application/json": {"schema": {
                "type": "object", "properties": {"grant_type": {"type": "string"}}}}}}),
        "delete": _op("revoke the caller's token", "204")},
    "/v1/auth/me": {
        "get": _op("the caller, their projects and roles", "200")},
    "/v1/auth/oidc": {
        "get": _op("what the client needs to log in with OpenID Connect", "200",
                   public=True)},
    "/v1/auth/tokens": {
        "get": _op("the caller's tokens", "200", _PAGED)},
    "/v1/auth/tokens/{token_id}": {
        "delete": _op("revoke one of the caller's tokens", "204", [
            {"name": "token_id", "in": "path", "required": True,
             "schema": {**_INT, "minimum": 1}}])},
    "/v1/admin/users": {
        "get": _op("every user with their roles (server admins)", "200", _PAGED)},
    "/v1/admin/users/{username}": {
        "patch": _op("activate or disable a user (server admins)", "200", _path("username"),
                     _body({"active": {"type": "boolean"}}, ("active",)))},
    "/v1/admin/audit": {
        "get": _op("the audit log, newest first (project and server admins)", "200", [
            {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
            for n in ("user", "project", "action", "since", "until")] + _PAGED)},
    "/v1/projects": {
        "get": _op("the caller's projects", "200", _PAGED)},
    _P: {
        "get": _op("one project", "200", _path("project"))},
    _P + "/classes": {
        "get": _op("the project's classes", "200", _path("project") + _PAGED),
        "post": _op("create or replace a class", "201", _path("project"),
                    _body({"name": _NAME, **_CLASS}, ("name",)))},
    _P + "/members": {
        "get": _op("the project's members and roles (project admins)", "200",
                   _path("project") + _PAGED)},
    _P + "/members/{username}": {
        "put": _op("give a user a role in the project (project admins)", "200",
                   _path("project", "username"),
                   _body({"role": {"enum": ["reader", "writer", "admin"]}}, ("role",))),
        "delete": _op("take a member's role away (project admins)", "204",
                      _path("project", "username"))},
    _C: {
        "get": _op("one class", "200", _path("project", "cls")),
        "put": _op("create or replace a class", "200", _path("project", "cls"),
                   _body(_CLASS))},
    _C + "/assets": {
        "get": _op("the class's assets", "200", _path("project", "cls") + _PAGED + [
            {"name": "deleted", "in": "query", "required": False,
             "schema": {"enum": ["0", "1"]}}])},
    _C + "/assets/{name}": {
        "get": _op("one asset, by ordinal or alias", "200", _path("project", "cls", "name")),
        "patch": _op("change an asset's title, description, tags and status", "200",
                     _path("project", "cls", "name"), _body({
                         "title": {"type": ["string", "null"]},
                         "description": {"type": ["string", "null"]},
                         "tags": {"type": ["array", "null"], "items": {"type": "string"}},
                         "status": {"enum": ["active", "deprecated", "obsolete", None]}})),
        "delete": _op("delete an asset softly", "200", _path("project", "cls", "name"))},
    _C + "/assets/{name}/restore": {
        "post": _op("restore a deleted asset", "200", _path("project", "cls", "name"))},
    _C + "/assets/{name}/versions": {
        "get": _op("the asset's versions", "200",
                   _path("project", "cls", "name") + _PAGED)},
    _C + "/assets/{name}/versions/{version}/size": {
        "get": _op("a version's size", "200", _path("project", "cls", "name", "version"))},
    _C + "/versions": {
        "post": _op("commit a version", "201", _path("project", "cls"), _body({
            "asset": {**_INT, "type": ["integer", "null"]},
            "parent": {"type": ["string", "null"]}, "manifest": _ID,
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 200},
            "bump": {"enum": ["patch", "minor", "major"]}},
            ("asset", "parent", "manifest", "idempotency_key")))},
    _C + "/aliases/{alias}": {
        "put": _op("point an alias at an asset", "200", _path("project", "cls", "alias"),
                   _body({"asset": _INT}, ("asset",))),
        "delete": _op("remove an alias", "204", _path("project", "cls", "alias"))},
    _P + "/find": {
        "get": _op("the versions holding an object, or an alias's asset", "200",
                   _path("project") + [
                       {"name": n, "in": "query", "required": False,
                        "schema": {"type": "string"}}
                       for n in ("hash", "alias", "class", "blob")] + _PAGED)},
    _P + "/versions/{manifest}/inputs": {
        "get": _op("the versions a version was made from", "200",
                   _path("project", "manifest") + _PAGED)},
    _P + "/versions/{manifest}/dependents": {
        "get": _op("the versions made from a version", "200",
                   _path("project", "manifest") + _PAGED)},
    _P + "/objects/batch": {
        "post": _op("negotiate a transfer of objects", "200", _path("project"), _body({
            "operation": {"enum": ["upload", "download"]},
            "objects": {"type": "array", "items": {
                "type": "object", "properties": {"id": _ID, "size": _INT},
                "required": ["id", "size"]}},
            "compact": {"enum": [0, 1]}, "packs": {"enum": [0, 1]}},
            ("operation", "objects")))},
    _P + "/objects/verify": {
        "post": _op("check objects' bytes against their ids", "200", _path("project"),
                    _body({"ids": {"type": "array", "items": _ID},
                           "seconds": {"type": ["number", "null"]}}, ("ids",)))},
    _P + "/objects/{oid}/multipart": {
        "post": _op("open or resume a large object's upload in parts", "200",
                    _path("project", "oid"),
                    _body({"size": {"type": "integer", "minimum": 0}}, ("size",)))},
    _P + "/objects/{oid}/multipart/complete": {
        "post": _op("join an upload's parts into the object, hashed after", "200",
                    _path("project", "oid"),
                    _body({"upload_id": {"type": ["string", "null"]}}, ("upload_id",)))},
    _P + "/objects/{oid}/multipart/{upload_id}/{number}": {
        "put": _op("one part of an upload in parts, to a storage without URLs of its own",
                   "201", _path("project", "oid", "upload_id", "number"), {
                       "required": True,
                       "content": {"application/octet-stream": {"schema": {
                           "type": "string", "format": "binary"}}}})},
    _P + "/objects/{oid}": {
        "get": _op("an object's bytes", "200", _path("project", "oid")),
        "put": _op("upload an object's bytes", "201", _path("project", "oid"), {
            "required": True,
            "content": {"application/octet-stream": {"schema": {
                "type": "string", "format": "binary"}}}})},
    _P + "/packs": {
        "post": _op("announce a pack of small objects", "200", _path("project"),
                    _body({"id": _ID, "size": _INT}, ("id", "size")))},
    _P + "/packs/{pid}": {
        "get": _op("a pack's bytes", "200", _path("project", "pid")),
        "put": _op("upload a pack and check it", "201", _path("project", "pid"), {
            "required": True,
            "content": {"application/octet-stream": {"schema": {
                "type": "string", "format": "binary"}}}})},
    _P + "/packs/{pid}/verify": {
        "post": _op("check an uploaded pack and record its objects", "200",
                    _path("project", "pid"))},
}

DOCUMENT: JSONObject = {
    "openapi": "3.1.0",
    "info": {"title": "ama remote", "version": "1",
             "description": "The HTTP API of ama-server: see ama-protocol(7)."},
    "paths": PATHS,
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "object", "required": ["code", "message", "hint"],
                      "properties": {"code": {"type": "string"},
                                     "message": {"type": "string"},
                                     "hint": {"type": ["string", "null"]}}}}}},
    },
    "security": [{"bearer": []}],
}
