"""What every part of the service shares: its state, and the lookups that check roles.

:class:`ServiceBase` holds the database, the storage opener and the injected clock and
randomness; its lookups (project with the caller's role, class, asset, a version's
reachable objects) raise the errors every operation answers with, so a project the caller
is not a member of answers exactly like a project that does not exist. ``upsert_objects``
is the one way an object row is written.
"""

from __future__ import annotations

import json
import operator
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypedDict, cast

from sqlalchemy import Row, Select, Table, Text, any_, bindparam, func, select, text
from sqlalchemy.orm import Session, aliased

from ama.plumbing import wire
from ama.plumbing.objects import TREE_HEADER, InvalidObject, Manifest, Tree
from ama_remote.db import Database
from ama_remote.errors import Forbidden, NotFound, ValidationFailed
from ama_remote.models import (
    ROLES,
    Alias,
    Asset,
    AssetClass,
    AuditEntry,
    Membership,
    Project,
    StoredObject,
    User,
    Version,
)
from ama_remote.storage.base import Backend

ROLE_RANK = {role: rank for rank, role in enumerate(ROLES, start=1)}


def utc_now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    return datetime.now(timezone.utc)


def _open_backend(url: str) -> Backend:
    from ama_remote.storage import open_backend

    return open_backend(url)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Caller:
    """Who is calling: an authenticated user, and whether they administer the whole server."""

    user_id: int
    username: str
    is_admin: bool


class ObjectRow(TypedDict):
    """The columns of one row of :class:`StoredObject`, as :func:`upsert_objects` writes
    them."""

    project_id: int
    oid: str
    size: int
    verified: bool
    kind: str | None
    data: bytes | None
    created: datetime


class _Found(TypedDict):
    project: str
    object: str  # an object or pack id, a path, a storage URL, or a leftover's name
    versions: list[str]


class Problem(_Found, total=False):
    """One problem ``fsck`` found: in a project, about an object (or pack, path, storage,
    leftover), which versions it concerns, what is wrong (``problem``), how (``detail``,
    for a damaged pack), and whether ``--repair`` repaired it."""

    problem: str
    detail: str
    repaired: bool


def id_among(s: Session, column: Any, unique: list[str]) -> Any:
    """The condition that ``column`` is one of the ids ``unique`` (sorted, no two alike),
    with the ids as one parameter however many there are: split into an array by
    PostgreSQL, a JSON array that SQLite unpacks with json_each. Negotiating 100,000 ids so
    neither binds 100,000 parameters nor runs dozens of IN (…) queries."""
    if len(unique) == 1:
        return column == unique[0]
    if s.get_bind().dialect.name == "postgresql":
        # One text parameter split by the server: psycopg would quote-check each element
        # of a 100,000-element array parameter (ids are hex, never holding a comma).
        split = func.string_to_array(bindparam("ids", ",".join(unique), type_=Text), ",")
        return column == any_(split)
    listed = func.json_each(json.dumps(unique)).table_valued("value")
    return column.in_(select(listed.c.value))


_LARGEST = (1 << 63) - 1  # a BIGINT's largest value


def not_held(s: Session, project_id: int, pairs: Iterable[tuple[str, int]]) -> set[str]:
    """Of ``(id, size)`` pairs (size -1: any size), the ids the project does not hold
    verified with that size, in one query that answers only those: a commit of 100,000
    files checks its blobs without a row each coming back."""
    unique = sorted(set(pairs))
    # A size no database integer holds is held by no object (a tree may say anything).
    huge = {oid for oid, size in unique if size > _LARGEST}
    unique = [(oid, size) for oid, size in unique if size <= _LARGEST]
    if not unique:
        return huge
    if s.get_bind().dialect.name == "postgresql":
        # Two text parameters split by the server, as in id_among.
        query = text(
            "SELECT u.oid FROM unnest(string_to_array(:ids, ','), "
            "string_to_array(:sizes, ',')::bigint[]) AS u(oid, size) "
            "LEFT JOIN objects AS o ON o.project_id = :project AND o.oid = u.oid "
            "WHERE o.oid IS NULL OR NOT o.verified OR (u.size >= 0 AND o.size <> u.size)")
        params: dict[str, Any] = {"ids": ",".join(o for o, _ in unique),
                                  "sizes": ",".join(str(n) for _, n in unique)}
    else:
        # json_extract, not ->> (SQLite 3.38): the SQLite of some supported Pythons is older.
        query = text(
            "SELECT json_extract(j.value, '$[0]') FROM json_each(:pairs) AS j "
            "LEFT JOIN objects AS o "
            "ON o.project_id = :project AND o.oid = json_extract(j.value, '$[0]') "
            "WHERE o.oid IS NULL OR NOT o.verified OR (json_extract(j.value, '$[1]') >= 0 "
            "AND o.size <> json_extract(j.value, '$[1]'))")
        params = {"pairs": json.dumps(unique)}
    return huge | set(s.execute(query, {**params, "project": project_id}).scalars())


def insert_rows(s: Session, table: str, columns: tuple[str, ...], rows: list[Any],
                conflict: str) -> None:
    """Insert ``rows`` (tuples, or lists, of the ``columns``' values, already in the
    driver's terms) into ``table`` with ``ON CONFLICT (project_id, oid) DO conflict``,
    straight through the driver's executemany, 10,000 rows a call: SQLAlchemy's per-row
    parameter handling costs more than the insert itself for the 100,000 rows of a few
    packs."""
    if not rows:
        return
    s.flush()  # the connection below bypasses the session's autoflush
    connection = s.connection()
    mark = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    names = ", ".join(f'"{c}"' for c in columns)
    sql = (f"INSERT INTO {table} ({names}) VALUES ({', '.join([mark] * len(columns))}) "
           f"ON CONFLICT (project_id, oid) DO {conflict}")
    for start in range(0, len(rows), 10_000):
        connection.exec_driver_sql(sql, [tuple(row) for row in rows[start:start + 10_000]])


_OBJECT_COLUMNS = ("project_id", "oid", "size", "verified", "kind", "data", "created")


def upsert_objects(s: Session, values: list[ObjectRow], replace: bool) -> None:
    """Insert object rows (every column of :class:`StoredObject`); a row already there for
    the same project and id is overwritten when ``replace``, else kept as it is."""
    if not values:
        return
    # Each column's own conversion (a date's text in SQLite) as SQLAlchemy would apply it.
    dialect = s.get_bind().dialect
    table = cast(Table, StoredObject.__table__)  # a mapped class's is a Table
    convert = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
               for name in _OBJECT_COLUMNS]
    get = operator.itemgetter(*_OBJECT_COLUMNS)
    rows = [list(get(row)) for row in values]
    for k, f in enumerate(convert):
        if f is not None:
            done: dict[Any, Any] = {}  # most rows share one date: converted once
            for row in rows:
                v = row[k]
                if v is not None:
                    if v not in done:
                        done[v] = f(v)
                    row[k] = done[v]
    insert_rows(s, "objects", _OBJECT_COLUMNS, rows,
                "UPDATE SET size = excluded.size, verified = excluded.verified, "
                "kind = excluded.kind, data = excluded.data" if replace else "NOTHING")


def _tree_entries(data: bytes, checked: bool) -> list[tuple[str, str, int, str]]:
    """The entries (type, id, size, name) of a tree's bytes. A tree ``checked`` when it was
    stored (its row's kind is "tree": it parsed then) is split by hand, five times faster;
    any other is parsed, raising InvalidObject for a broken one."""
    if checked:
        out = []
        for line in data[len(TREE_HEADER):-1].decode("utf-8").split("\n"):
            head, _tab, name = line.partition("\t")
            kind, oid, size = head.split(" ")
            out.append((kind, oid, int(size), name))
        return out
    return [(e.type, e.id, e.size, e.name) for e in Tree.deserialize(data).entries]


def _written_by(manifest: Manifest | bytes | None, uploader: str, uploaded: datetime
                ) -> wire.Authorship:
    """Who made a version and when, as its manifest says (the author the uploader's client
    recorded), beside the account that uploaded it and the server's time of upload."""
    if isinstance(manifest, bytes):
        try:
            manifest = Manifest.deserialize(manifest)
        except InvalidObject:
            manifest = None
    uploaded_at = _stamp(uploaded)
    if manifest is None:  # not expected: a commit stores its manifest's bytes
        return {"author": uploader, "author_email": None, "created": uploaded_at,
                "message": None, "uploader": uploader, "uploaded": uploaded_at}
    return {"author": manifest.author.name, "author_email": manifest.author.email,
            "created": manifest.created, "message": manifest.message, "uploader": uploader,
            "uploaded": uploaded_at}


class ServiceBase:
    """The state and lookups every part of the service shares."""

    def __init__(
        self,
        db: Database,
        open_storage: Callable[[str], Backend] = _open_backend,
        clock: Callable[[], datetime] = utc_now,
        token_bytes: Callable[[int], bytes] = secrets.token_bytes,
        open_signup_domains: tuple[str, ...] = (),
        token_ttl: int = 30 * 86400,
    ) -> None:
        self.db = db
        self._open_storage = open_storage
        self._clock = clock
        self._token_bytes = token_bytes
        self.open_signup_domains = tuple(d.lower() for d in open_signup_domains)
        self.token_ttl = token_ttl
        # The largest object the server takes: also the largest file a proxy may describe.
        from ama_remote.config import MAX_OBJECT_BYTES

        self.max_object_bytes = MAX_OBJECT_BYTES
        self._storages: dict[str, Backend] = {}

    def _now(self) -> datetime:
        """The injected clock's time as naive UTC, the form every table stores."""
        return self._clock().astimezone(timezone.utc).replace(tzinfo=None, microsecond=0)

    def _storage(self, url: str) -> Backend:
        if url not in self._storages:
            self._storages[url] = self._open_storage(url)
        return self._storages[url]

    @staticmethod
    def _project(s: Session, caller: Caller, name: str, need: str = "reader") -> Project:
        project = s.scalars(select(Project).where(Project.name == name)).first()
        role = None
        if project is not None:
            role = "admin" if caller.is_admin else s.scalar(
                select(Membership.role).where(Membership.project_id == project.id,
                                              Membership.user_id == caller.user_id))
        if project is None or role is None:
            raise NotFound(f"project {name!r} not found",
                           "run 'ama project list' to see the projects you can use")
        if ROLE_RANK[role] < ROLE_RANK[need]:
            raise Forbidden(
                f"{caller.username} is a {role} of project {name!r}; this needs {need}",
                f"ask an admin of {name!r} to run "
                f"'ama admin grant {caller.username} {need} --project {name}'")
        return project

    @staticmethod
    def _class(s: Session, project: Project, name: str, lock: bool = False) -> AssetClass:
        query = select(AssetClass).where(AssetClass.project_id == project.id,
                                         AssetClass.name == name)
        if lock:
            query = query.with_for_update()
        klass = s.scalars(query).first()
        if klass is None:
            raise NotFound(f"class {name!r} not found in project {project.name!r}",
                           "run 'ama class list' to see the classes of this project")
        return klass

    @staticmethod
    def _asset(s: Session, klass: AssetClass, name: int | str, lock: bool = False,
               deleted: bool = False) -> Asset:
        """The asset ``name`` (an ordinal, or an alias) of ``klass``; raises NotFound, also
        for a deleted asset unless ``deleted`` (a delete or a restore) asks for it."""
        query = select(Asset).where(Asset.class_id == klass.id)
        if isinstance(name, int) or (isinstance(name, str) and name.isdigit()):
            query = query.where(Asset.ordinal == int(name))
        else:
            query = query.join(Alias, Alias.asset_id == Asset.id).where(Alias.name == name)
        if lock:
            query = query.with_for_update(of=Asset)
        asset = s.scalars(query).first()
        if asset is None:
            raise NotFound(f"asset {klass.name}/{name} not found",
                           f"run 'ama list {klass.name}' to see its assets")
        if asset.deleted is not None and not deleted:
            raise NotFound(
                f"asset {klass.name}/{asset.ordinal} was deleted on "
                f"{_stamp(asset.deleted)}: its versions cannot be listed or cloned",
                f"a project admin can bring it back with "
                f"'ama asset restore {klass.name}/{asset.ordinal}'")
        return asset

    @staticmethod
    def _latest(s: Session, asset_id: int) -> Version | None:
        return s.scalars(select(Version).where(Version.asset_id == asset_id)
                         .order_by(Version.major.desc(), Version.minor.desc(),
                                   Version.patch.desc()).limit(1)).first()

    @staticmethod
    def _object_rows(s: Session, project_id: int, ids: Iterable[str],
                     with_data: bool = False) -> dict[str, Row[Any]]:
        """Return oid -> row (oid, size, verified[, data]) for the ids the project holds.

        One query whatever the number of ids: the ids travel as one parameter (split into
        an array by PostgreSQL, a JSON array SQLite unpacks with json_each), so negotiating
        100,000 ids neither binds 100,000 parameters nor runs dozens of IN (…) queries.
        """
        unique = sorted(set(ids))
        if not unique:
            return {}
        cols: list[Any] = [StoredObject.oid, StoredObject.size, StoredObject.verified]
        if with_data:
            cols += [StoredObject.data, StoredObject.kind]
        query = select(*cols).where(StoredObject.project_id == project_id,
                                    id_among(s, StoredObject.oid, unique))
        return {row[0]: row for row in s.execute(query)}

    def _upsert_object(self, s: Session, project_id: int, oid: str, size: int, verified: bool,
                       kind: str | None = None, data: bytes | None = None,
                       keep_verified: bool = False) -> None:
        upsert_objects(s, [{"project_id": project_id, "oid": oid, "size": size,
                            "verified": verified, "kind": kind, "data": data,
                            "created": self._now()}], replace=not keep_verified)

    @staticmethod
    def _version_query() -> Select[Version, int, str, str, str, bytes | None]:
        parent = aliased(Version)
        manifest = aliased(StoredObject)
        return (select(Version, Asset.ordinal, AssetClass.name, User.username,
                       parent.manifest_id.label("parent_manifest"), manifest.data)
                .join(Asset, Version.asset_id == Asset.id)
                .join(AssetClass, Asset.class_id == AssetClass.id)
                .join(User, Version.author_id == User.id)
                .outerjoin(parent, Version.parent_id == parent.id)
                .outerjoin(manifest, (manifest.project_id == AssetClass.project_id)
                           & (manifest.oid == Version.manifest_id)))

    @staticmethod
    def _version_dict(row: Any) -> wire.Version:
        v, ordinal, cls, uploader, parent, manifest = row
        number = f"{v.major}.{v.minor}.{v.patch}"
        return {"class": cls, "ordinal": ordinal, "name": f"{cls}/{ordinal}", "version": number,
                "manifest": v.manifest_id, "parent": parent, "tree": v.tree_id,
                **_written_by(manifest, uploader, v.created)}

    def _versions(self, s: Session, *where: Any) -> list[wire.Version]:
        query = self._version_query().where(*where).order_by(
            AssetClass.name, Asset.ordinal, Version.major, Version.minor, Version.patch)
        return [self._version_dict(row) for row in s.execute(query)]

    def _asset_dict(self, s: Session, klass: AssetClass, asset: Asset) -> wire.AssetRecord:
        return self._asset_dicts(s, klass, [asset])[0]

    def _asset_dicts(self, s: Session, klass: AssetClass, assets: list[Asset]
                     ) -> list[wire.AssetRecord]:
        """Describe ``assets`` of ``klass`` in three queries, however many there are: a page
        of a thousand assets must not cost four thousand round trips to the database."""
        ids = [asset.id for asset in assets]
        aliases: dict[int, list[str]] = {i: [] for i in ids}
        for asset_id, name in s.execute(select(Alias.asset_id, Alias.name)
                                        .where(Alias.asset_id.in_(ids)).order_by(Alias.name)):
            aliases[asset_id].append(name)
        ranked = select(
            Version.id, Version.asset_id,
            func.row_number().over(partition_by=Version.asset_id,
                                   order_by=(Version.major.desc(), Version.minor.desc(),
                                             Version.patch.desc())).label("rank"),
            func.count().over(partition_by=Version.asset_id).label("count"),
        ).where(Version.asset_id.in_(ids)).subquery()
        newest = {asset_id: (vid, count) for asset_id, vid, count in s.execute(
            select(ranked.c.asset_id, ranked.c.id, ranked.c.count).where(ranked.c.rank == 1))}
        latest = {v["ordinal"]: v for v in self._versions(
            s, Version.id.in_([vid for vid, _ in newest.values()]))} if newest else {}
        return [{"class": klass.name, "ordinal": asset.ordinal,
                 "name": f"{klass.name}/{asset.ordinal}", "title": asset.title,
                 "description": asset.description, "tags": list(asset.tags or []),
                 "aliases": aliases[asset.id], "created": _stamp(asset.created),
                 "status": asset.status or "active", "deleted": _stamp(asset.deleted),
                 "versions": newest.get(asset.id, (None, 0))[1],
                 "latest": latest.get(asset.ordinal)} for asset in assets]

    @staticmethod
    def _class_dict(klass: AssetClass) -> wire.AssetClass:
        return {"name": klass.name, "description": klass.description, "schema": klass.schema,
                "rules": klass.rules or wire.ClassRules(), "visualisation": klass.visualisation,
                "created": _stamp(klass.created)}

    def _audit_admin(self, s: Session, actor: Caller | None, action: str, target: str,
                     project_id: int | None = None, old: Any = None, new: Any = None) -> None:
        """Record an admin action (``user.disable``, ``role.grant`` …) in the audit log;
        ``actor`` None is the server's own console (``ama-server``)."""
        s.add(AuditEntry(project_id=project_id, class_id=None, ordinal=None,
                         user_id=None if actor is None else actor.user_id, at=self._now(),
                         field=action, target=target, old=old, new=new))

    @staticmethod
    def _user(s: Session, username: str) -> User:
        user = s.scalars(select(User).where(User.username == username)).first()
        if user is None:
            raise NotFound(f"user {username!r} not found",
                           "run 'ama admin user list' (or 'ama-server user list' on the "
                           "server) to see every user")
        return user

    @staticmethod
    def _projects_of(s: Session, caller: Caller) -> list[wire.ProjectRole]:
        if caller.is_admin:
            return [{"name": name, "role": "admin"}
                    for name in s.scalars(select(Project.name).order_by(Project.name))]
        rows = s.execute(select(Project.name, Membership.role)
                         .join(Membership, Membership.project_id == Project.id)
                         .where(Membership.user_id == caller.user_id).order_by(Project.name))
        return [{"name": name, "role": role} for name, role in rows]

    def _reachable(self, s: Session, project_id: int, manifest: str,
                   links: list[tuple[str, str, int]] | None = None,
                   trees: list[str] | None = None,
                   proxies: list[tuple[str, str, int]] | None = None
                   ) -> tuple[Manifest | None, list[tuple[str, str, int]], list[str]]:
        """Walk a manifest through the trees stored in the database.

        Returns (manifest, files as (path, blob id, size), problems naming each object that
        is missing or not verified in the project); symbolic links are files there, and
        also appended to ``links`` as (path, blob id, size) when it is given. The ids of
        the trees walked are appended to ``trees`` when it is given. A proxy file is a file
        whose blob is its descriptor (the bytes stay at their source, so the entry's size is
        theirs, not the descriptor's); it is also appended to ``proxies`` when given.
        """
        missing: list[str] = []
        row = self._object_rows(s, project_id, [manifest], with_data=True).get(manifest)
        if row is None or not row.verified or row.data is None:
            return None, [], [f"missing manifest {manifest}"]
        try:
            parsed = Manifest.deserialize(row.data)
        except InvalidObject as e:
            raise ValidationFailed(f"object {manifest} is not a manifest: {e.message}",
                                   problems=[f"not a manifest: {manifest}"]) from e
        files: list[tuple[str, str, int]] = []
        proxy_paths: set[str] = set()
        level = [(parsed.tree, "")]
        while level:
            rows = self._object_rows(s, project_id, [oid for oid, _ in level], with_data=True)
            below = []
            for oid, prefix in level:
                if trees is not None:
                    trees.append(oid)
                tree_row = rows.get(oid)
                if tree_row is None or not tree_row.verified or tree_row.data is None:
                    missing.append(f"missing tree {oid} ({prefix or '/'})")
                    continue
                try:
                    entries = _tree_entries(tree_row.data, tree_row.kind == "tree")
                except InvalidObject as e:
                    missing.append(f"not a tree: {oid} ({prefix or '/'}): {e.message}")
                    continue
                for kind, entry_id, size, name in entries:
                    path = prefix + name
                    if kind == "tree":
                        below.append((entry_id, path + "/"))
                    else:
                        files.append((path, entry_id, size))
                        if kind == "link" and links is not None:
                            links.append((path, entry_id, size))
                        elif kind == "proxy":
                            proxy_paths.add(path)
                            if proxies is not None:
                                proxies.append((path, entry_id, size))
            level = below
        suspect = not_held(s, project_id, ((oid, -1 if path in proxy_paths else size)
                                           for path, oid, size in files))
        blobs = self._object_rows(s, project_id, suspect)
        for path, oid, size in files:
            if oid not in suspect:
                continue
            blob = blobs.get(oid)
            if blob is None or not blob.verified:
                missing.append(f"missing blob {oid} ({path})")
            elif blob.size != size and path not in proxy_paths:
                missing.append(f"blob {oid} ({path}) is {blob.size} bytes, the tree says {size}")
        return parsed, files, missing
