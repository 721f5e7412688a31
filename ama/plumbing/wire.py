"""The JSON documents of the remote's API (ama-protocol(7)), one typed definition each.

The service layer of the remote returns these, the HTTP app sends them as they are, and
both transports (HTTP, and the in-process one of a ``file://`` remote) hand them to the
porcelain: one definition serves every side, so a field renamed on one side is a type error
on the others. They are :class:`~typing.TypedDict`\\ s, plain dicts at run time, so what
travels is exactly what was sent before they had types.

Documents with a ``class`` field (a Python keyword) use the functional form. A client
reads with ``.get()`` the fields an older server may not send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict, final

from ama.plumbing.jsontext import JSONObject, JSONSchema, Metadata

# -- users and tokens ------------------------------------------------------------------------


class User(TypedDict):
    """A user: what ``POST /v1/auth/signup`` answers, and the server's user administration."""

    username: str
    email: str
    admin: bool
    active: bool
    created: str | None


class ProjectRole(TypedDict):
    """A project the caller may use, with their role (``GET /v1/projects``)."""

    name: str
    role: str


class Me(TypedDict):
    """``GET /v1/auth/me``: who the token belongs to and the projects they may use."""

    username: str
    email: str
    admin: bool
    projects: list[ProjectRole]


class Token(TypedDict):
    """``POST /v1/auth/token``: a fresh token and the user it is for."""

    token: str
    username: str


class _LoginSettings(TypedDict):
    issuer: str
    client_id: str
    scopes: str
    grant_type: str


class LoginSettings(_LoginSettings, total=False):
    """``GET /v1/auth/oidc``: what a browser login needs; ``client_secret`` only when the
    provider gave this native client one."""

    client_secret: str


# -- administration --------------------------------------------------------------------------


class AdminUser(User):
    """A user as server admins list them (``GET /v1/admin/users``): with their roles."""

    projects: list[ProjectRole]


class Member(TypedDict):
    """A member of a project, with their role (``GET /v1/projects/P/members``)."""

    username: str
    email: str
    active: bool
    role: str


class Role(TypedDict):
    """``PUT /v1/projects/P/members/NAME``: the role a member now has."""

    project: str
    username: str
    role: str


class TokenInfo(TypedDict):
    """One of a user's tokens (``GET /v1/auth/tokens``); its text is never kept."""

    id: int
    created: str
    expires: str
    revoked: str | None
    current: bool


# ``user`` is None for the server's console; ``old`` and ``new`` are what the action changed.
AuditEntry = TypedDict("AuditEntry", {
    "id": int, "at": str, "user": str | None, "project": str | None,
    "class": str | None, "ordinal": int | None, "action": str, "target": str,
    "old": Any, "new": Any})


class AuditPage(TypedDict):
    """``GET /v1/admin/audit``: one page of the audit log, newest first."""

    items: list[AuditEntry]
    next_page: int | None


# -- projects and classes --------------------------------------------------------------------


class Project(TypedDict):
    """``GET /v1/projects/{p}``: a project, the caller's role in it and its classes' names."""

    name: str
    role: str
    created: str | None
    classes: list[str]
    storage: str


class StoredProject(TypedDict):
    """A project as its server's administrators see it: where its objects are stored."""

    name: str
    storage: str
    created: str | None


class ServerProject(StoredProject):
    """One project of ``ama-server project list``, with its number of members."""

    members: int


class ClassRules(TypedDict, total=False):
    """The rules every version of a class must satisfy; each is optional."""

    required_files: list[str]
    forbidden_files: list[str]
    max_total_size: int
    max_file_size: int
    max_file_count: int
    # The asset's own rules, checked when its title, description or tags change.
    max_tags: int
    tag_pattern: str
    max_title_length: int
    max_description_length: int


class AssetClass(TypedDict):
    """``GET /v1/projects/{p}/classes/{c}``: a class, with the JSON Schema its versions'
    metadata must satisfy and its rules."""

    name: str
    description: str
    schema: JSONSchema | None
    rules: ClassRules
    visualisation: Any
    created: str | None


# -- versions and assets ---------------------------------------------------------------------

class Authorship(TypedDict):
    """Who made a version and when, as its manifest records (``author``, ``author_email``,
    ``created``, ``message``), beside the account that committed it (``uploader``) and the
    server's time of the commit (``uploaded``)."""

    author: str
    author_email: str | None
    created: str | None
    message: str | None
    uploader: str
    uploaded: str | None


_VersionName = TypedDict("_VersionName", {
    "class": str,
    "ordinal": int,
    "name": str,
    "version": str,
    "manifest": str,
    "parent": str | None,
    "tree": str,
})


class Version(_VersionName, Authorship):
    """One version of an asset (``GET …/assets/{n}/versions``, and a commit's answer): its
    class, the asset's ordinal and name, its number, manifest, parent manifest and root
    tree, and its :class:`Authorship`."""


class FoundVersion(Version, total=False):
    """A version ``find`` answers; found by a blob, with the ``paths`` where it appears."""

    paths: list[str]


class Dependent(Version):
    """A version that names another as an input, with the label of that input."""

    label: str


class Input(TypedDict):
    """One input of a version (``GET …/versions/{manifest}/inputs``): the input's manifest,
    name and label, and its version in this project (None when the project has none)."""

    manifest: str
    name: str
    label: str
    version: Version | None


class VersionSize(TypedDict):
    """``GET …/versions/{v}/size``: the bytes and number of files of one version."""

    bytes: int
    files: int


# ``GET …/assets/{n}``: an asset, with its number of versions and its latest one.
AssetRecord = TypedDict("AssetRecord", {
    "class": str,
    "ordinal": int,
    "name": str,
    "title": str,
    "description": str,
    "tags": list[str],
    "aliases": list[str],
    "created": str | None,
    "status": str,
    "deleted": str | None,
    "versions": int,
    "latest": Version | None,
})


class Page(TypedDict):
    """One page of a listing (routes marked *paged*); ``next_page`` is None on the last."""

    items: list[Any]
    next_page: int | None


class AssetPage(TypedDict):
    """One page of ``GET …/classes/{c}/assets``."""

    items: list[AssetRecord]
    next_page: int | None


# ``PUT …/aliases/{alias}``: the alias and the asset it names now.
AliasRecord = TypedDict("AliasRecord", {"class": str, "alias": str, "ordinal": int,
                                        "name": str})


# -- object transfer: negotiation ------------------------------------------------------------


class Action(TypedDict):
    """How to move one object's (or pack's) bytes: a request to send as it is."""

    href: str
    method: str
    headers: dict[str, str]
    expires: int


class ObjectRequest(TypedDict):
    """An object a negotiation asks about (``POST …/objects/batch``): its id and size."""

    id: str
    size: int


class _BatchRequest(TypedDict):
    operation: str
    objects: list[ObjectRequest]


class BatchRequest(_BatchRequest, total=False):
    """The body of ``POST …/objects/batch``: ``upload`` or ``download`` of these objects;
    ``compact`` 1 asks for the answer in negotiation format 1, ``packs`` 1 says an upload
    will send the objects in packs."""

    compact: int
    packs: int


class ObjectError(TypedDict):
    """Why one object of a negotiation, a verify or a bulk upload was refused: the HTTP
    status the same refusal of a request of its own would have, and what went wrong."""

    code: int
    message: str


class PackPlace(TypedDict):
    """Where a packed object lies: its pack and the byte range in it (ama-format(5) PACKS)."""

    id: str
    offset: int
    length: int


@final  # no other document has these keys: a test for one of them tells the others apart
class ObjectAnswer(TypedDict, total=False):
    """The answer for one object of ``POST …/objects/batch`` (and of ``objects/verify``):
    ``{id, size}`` held, ``{id, size, actions}`` to transfer, ``{id, size, pack}`` to read
    from a pack, ``{id, error}`` refused; verify adds ``verified`` and ``pending`` (with
    ``verifying`` when the remote hashes it in the background: ask again after a while)."""

    id: Any  # what was asked, echoed even when it is no object id
    size: int
    actions: dict[str, Action]
    pack: PackPlace
    error: ObjectError
    verified: bool
    pending: bool
    verifying: bool


class PackAnswer(TypedDict, total=False):
    """A pack's answer (``POST …/packs``, its PUT, ``…/verify``): ``{id, size, actions}``
    to upload it (``upload``, and ``verify`` after a presigned PUT), or ``{id, size,
    objects}`` once the remote holds it, checked, with that many members."""

    id: str
    size: int
    actions: dict[str, Action]
    objects: int


class Verification(TypedDict):
    """``POST …/objects/verify``: per id asked, in order, ``{id, size, verified}``,
    ``{id, error}`` or ``{id, pending}`` (not begun in the time given: ask again)."""

    objects: list[ObjectAnswer]


class PackDownload(TypedDict):
    """How to read a pack that objects of a download lie in: its size, and its
    ``download`` action (a whole GET, or Range requests of its members)."""

    size: int
    actions: dict[str, Action]


class _Negotiation(TypedDict):
    objects: list[ObjectAnswer]


class Negotiation(_Negotiation, total=False):
    """The full answer of ``POST …/objects/batch``: one entry per object asked about, in
    order, and for downloads from packs how to read each pack (``packs``: pack id ->
    :class:`PackDownload`)."""

    packs: dict[str, PackDownload]


class Transfer(Action):
    """The compact answer's one action for every object that moves through the server's
    own route: ``href`` holds ``{id}`` where an object's id goes; ``objects`` are the ids
    it serves, with their sizes."""

    objects: dict[str, int]


# A packed object in the compact answer: [pack id, offset, length], a JSON array.
PackedAt = tuple[str, int, int]


class _CompactNegotiation(TypedDict):
    compact: int
    objects: list[ObjectAnswer]
    present: dict[str, int]
    transfer: Transfer


class CompactNegotiation(_CompactNegotiation, total=False):
    """The answer of ``POST …/objects/batch`` in negotiation format 1 (``"compact": 1``):
    ``objects`` holds only errors and presigned actions, ``present`` the ids held (with
    their sizes), ``transfer`` the ids that move through the server; for downloads from
    packs, ``packs`` as in :class:`Negotiation` and ``packed``: id -> :data:`PackedAt`.
    Read it with :func:`expand`."""

    packs: dict[str, PackDownload]
    packed: dict[str, PackedAt]


class Negotiating:
    """A negotiation answer being built by the server, in full or in negotiation format 1
    (``compact``): the same entries either way, so :func:`expand` of the compact answer
    gives the full one. ``own_href`` is the server's own route of an object, with ``{id}``
    where its id goes, for storages that presign nothing (``file://``)."""

    def __init__(self, operation: str, compact: bool, own_href: str, expires: int) -> None:
        self.operation = operation
        self.compact = compact
        self.method = "PUT" if operation == "upload" else "GET"
        self.own_href = own_href
        self.expires = expires
        self.listed: list[ObjectAnswer] = []
        self.present: dict[str, int] = {}
        self.own: dict[str, int] = {}
        self.packed: dict[str, PackedAt] = {}

    def error(self, oid: Any, code: int, message: str) -> None:
        self.listed.append({"id": oid, "error": {"code": code, "message": message}})

    def held(self, oid: str, size: int) -> None:
        """The project holds ``oid`` already: nothing to send."""
        if self.compact:
            self.present[oid] = size
        else:
            self.listed.append({"id": oid, "size": size})

    def in_pack(self, oid: str, size: int, pack: str, offset: int, length: int) -> None:
        """``oid`` is read from bytes ``offset`` on of ``pack``."""
        if self.compact:
            self.packed[oid] = (pack, offset, length)
        else:
            self.listed.append({"id": oid, "size": size,
                                "pack": {"id": pack, "offset": offset, "length": length}})

    def through_server(self, oid: str, size: int) -> None:
        """``oid`` moves through the server's own route."""
        if self.compact:
            self.own[oid] = size
        else:
            self.listed.append({"id": oid, "size": size, "actions": {self.operation: {
                "href": self.own_href.replace("{id}", oid), "method": self.method,
                "headers": {}, "expires": self.expires}}})

    def presigned(self, oid: str, size: int, actions: dict[str, Action]) -> None:
        """``oid`` moves through presigned requests of the storage service."""
        self.listed.append({"id": oid, "size": size, "actions": actions})

    def answer(self, packs: dict[str, PackDownload] | None = None
               ) -> Negotiation | CompactNegotiation:
        """The answer, with ``packs`` (how to read the packs of a download) if any."""
        if not self.compact:
            full: Negotiation = {"objects": self.listed}
            if packs:
                full["packs"] = packs
            return full
        compact: CompactNegotiation = {
            "compact": 1, "objects": self.listed, "present": self.present,
            "transfer": {"href": self.own_href, "method": self.method, "headers": {},
                         "expires": self.expires, "objects": self.own}}
        if packs:
            compact["packs"] = packs
        if self.packed:
            compact["packed"] = self.packed
        return compact


def expand(answer: CompactNegotiation, operation: str,
           objects: list[ObjectRequest]) -> Negotiation:
    """Turn a compact negotiation answer (format 1) into the full one: one entry per object
    asked about, in the order asked. Raises KeyError naming an object the answer left out.

    ``answer`` comes from a remote: a field it leaves out is read as empty."""
    listed = {item["id"]: item for item in answer.get("objects") or ()}
    packed: Mapping[str, PackedAt] = answer.get("packed") or {}
    present: Mapping[str, int] = answer.get("present") or {}
    transfer: Mapping[str, Any] = answer.get("transfer") or {}
    own: Mapping[str, int] = transfer.get("objects") or {}
    head, _, tail = str(transfer.get("href", "")).partition("{id}")
    method, expires = str(transfer.get("method")), int(transfer.get("expires") or 0)
    headers = dict(transfer.get("headers") or {})
    expanded: list[ObjectAnswer] = []
    add = expanded.append
    for item in objects:
        oid = item["id"]
        if oid in own:
            add({"id": oid, "size": own[oid], "actions": {operation: {
                "href": head + oid + tail, "method": method, "headers": dict(headers),
                "expires": expires}}})
        elif oid in present:
            add({"id": oid, "size": present[oid]})
        elif oid in packed:
            pid, offset, length = packed[oid]
            add({"id": oid, "size": length, "pack": {"id": pid, "offset": offset,
                                                      "length": length}})
        else:
            add(listed[oid])
    full: Negotiation = {"objects": expanded}
    if "packs" in answer:
        full["packs"] = answer["packs"]
    return full


# -- object transfer: large objects in parts ------------------------------------------------


class Part(TypedDict):
    """A part of an upload in parts still to send: its number (from 1), where it begins
    in the object, its size, and the request that sends it."""

    number: int
    offset: int
    size: int
    action: Action


class MultipartUpload(TypedDict):
    """``POST …/objects/{id}/multipart`` for an object the project lacks: the upload
    (``upload_id`` None when the storage holds the object's bytes already, and only
    completing is left), its parts' size, the parts still to send, and the bytes the parts
    stored already hold. An object the project holds is answered ``{id, size, verified}``
    (an :class:`ObjectAnswer`) instead."""

    id: str
    size: int
    part_size: int
    upload_id: str | None
    parts: list[Part]
    stored_bytes: int


class PartStored(TypedDict):
    """``PUT …/multipart/{upload_id}/{number}``: the part the server wrote, and its size."""

    number: int
    size: int


# -- object transfer with the embedded remote, in process ------------------------------------


class StoredFile(TypedDict, total=False):
    """One file of a bulk upload to the embedded remote (``put_object_files``): ``{id,
    size, verified, stored}`` (``stored`` False when the storage held its bytes already),
    or ``{id, error}``."""

    id: str
    size: int
    verified: bool
    stored: bool
    error: ObjectError


class StoredFiles(TypedDict):
    """The answer of a bulk upload to the embedded remote: one entry per file, in order."""

    objects: list[StoredFile]


class PackFile(TypedDict):
    """Where a packed object lies on this machine: its pack's file and the byte range."""

    path: str
    offset: int
    length: int


class ObjectFile(TypedDict, total=False):
    """Where one object of the embedded remote is on this machine (``object_files``):
    ``{id, size, path}`` (``path`` None when the storage has no local files), ``{id, size,
    path: None, pack}`` for a packed object (``pack`` None without local files), or
    ``{id, error}``."""

    id: str
    size: int
    path: str | None
    pack: PackFile | None
    error: ObjectError


class ObjectFiles(TypedDict):
    """The answer of ``object_files``: one entry per object asked about, in order."""

    objects: list[ObjectFile]


# -- errors ----------------------------------------------------------------------------------


class _ErrorDetail(TypedDict):
    code: str
    message: str
    hint: str | None


class ErrorDetail(_ErrorDetail, total=False):
    """What went wrong: ``latest`` (a 409's latest manifest) and ``problems`` (a 422's
    missing objects or broken rules) only where they apply."""

    latest: str | None
    problems: list[str]


class ErrorBody(TypedDict):
    """The body of every answer with an error status."""

    error: ErrorDetail


__all__ = ["Action", "AdminUser", "AliasRecord", "AssetClass", "AssetPage", "AssetRecord",
           "AuditEntry", "AuditPage", "Authorship", "BatchRequest", "ClassRules",
           "CompactNegotiation", "Dependent", "ErrorBody", "ErrorDetail", "FoundVersion", "Input",
           "JSONObject", "JSONSchema", "LoginSettings", "Me", "Member", "Metadata",
           "MultipartUpload", "Negotiating", "Negotiation", "ObjectAnswer", "ObjectError",
           "ObjectFile", "ObjectFiles", "ObjectRequest", "PackAnswer", "PackDownload", "PackFile",
           "PackPlace", "PackedAt", "Page", "Part", "PartStored", "Project", "ProjectRole", "Role",
           "ServerProject", "StoredFile", "StoredFiles", "StoredProject", "Token", "TokenInfo",
           "Transfer", "User", "Verification", "Version", "VersionSize", "expand"]
