"""What the web dashboard reads that the API has no route for: a filtered and sorted page
of a class's assets, a version's files page by page with its totals, the totals of many
versions at once, and the difference between two versions.

Each read checks the caller's role like every other part, and each costs a number of
queries bounded by the depth of the trees it walks, never by the number of assets, versions
or files: a class of 10,000 assets and a version of 100,000 files must still answer at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy import Row, String, cast, exists, func, select
from sqlalchemy.orm import Session, aliased

from ama.plumbing import wire
from ama.plumbing.objects import TREE_HEADER, InvalidObject, Manifest, Tree
from ama_remote.errors import BadInput, NotFound
from ama_remote.models import Alias, Asset, User, Version
from ama_remote.service.catalog import Catalog
from ama_remote.service.common import Caller, ServiceBase, _tree_entries

# The orders a page of assets can be sorted in, and the column each one sorts by.
ASSET_SORTS = ("ordinal", "title", "created", "updated")


def _day(value: str | None, label: str) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d")
    except ValueError:
        raise BadInput(f"invalid {label} date {value[:40]!r}: expected YYYY-MM-DD") from None


def _tree_lines(data: bytes, checked: bool) -> list[bytes]:
    """The entry lines of a tree's bytes, unparsed. A tree ``checked`` when it was stored
    is only split; any other is parsed first, and yields no line when it is broken."""
    if not checked:
        try:
            entries = Tree.deserialize(data).entries
        except InvalidObject:
            return []
        return [f"{e.type} {e.id} {e.size}\t{e.name}".encode() for e in entries]
    body = data[len(TREE_HEADER):-1]
    return body.split(b"\n") if body else []


def _tree_line(line: bytes) -> tuple[str, str, int, str]:
    """(type, id, size, name) of one entry line."""
    head, _tab, name = line.decode("utf-8").partition("\t")
    kind, oid, size = head.split(" ")
    return kind, oid, int(size), name


def _find_line(lines: list[bytes], name: str) -> tuple[str, str, int, str] | None:
    """The entry named ``name`` among a tree's lines, or None."""
    tail = b"\t" + name.encode("utf-8")
    for line in lines:
        if line.endswith(tail):
            return _tree_line(line)
    return None


class AssetsPage(wire.AssetPage):
    """One page of a class's assets as the dashboard filters them, and how many match."""

    total: int


class Entry(TypedDict):
    """An entry of a version's folder: a folder (``tree``), a file (``blob``) or a link."""

    name: str
    path: str
    kind: str
    id: str
    size: int


class InputRef(TypedDict):
    """An input a version names: its name, its label, and its manifest."""

    name: str
    label: str
    manifest: str


class VersionFolder(TypedDict):
    """One version with one page of one of its folders (:meth:`Browsing.version_files`)."""

    version: wire.Version
    metadata: wire.Metadata
    inputs: list[InputRef]
    folder: str
    entries: list[Entry]
    files: list[Entry]
    total_entries: int
    folder_bytes: int
    total_bytes: int
    next_page: int | None
    problems: list[str]


class ChangedFile(TypedDict):
    """A file added or removed between two versions."""

    path: str
    id: str
    size: int


class ModifiedFile(ChangedFile):
    """A file whose bytes changed between two versions: its id and size before, too."""

    old_id: str
    old_size: int


class VersionDiff(TypedDict):
    """What changed from one version to another, each list by path."""

    added: list[ChangedFile]
    removed: list[ChangedFile]
    modified: list[ModifiedFile]


def _named_entries(rows: dict[str, Row[Any]], tree: str | None
                   ) -> dict[str, tuple[str, str, int]]:
    """name -> (type, id, size) of a tree among ``rows``; none for a missing or broken one."""
    row = rows.get(tree) if tree else None
    if row is None or row.data is None:
        return {}
    try:
        parsed = _tree_entries(row.data, row.kind == "tree")
    except InvalidObject:
        return {}
    return {e[3]: (e[0], e[1], e[2]) for e in parsed}


class Browsing(ServiceBase):
    """The dashboard's reads: filtered asset pages, version files and totals, diffs."""

    def browse_assets(self, caller: Caller, project: str, cls: str, *, sort: str = "ordinal",
                      descending: bool = False, tag: str | None = None,
                      alias: str | None = None, owner: str | None = None,
                      since: str | None = None, until: str | None = None, page: int = 1,
                      per_page: int = 50) -> AssetsPage:
        """Return one page of the class's assets: ``{"items", "total", "next_page"}``.

        ``tag`` keeps assets carrying that tag; ``alias`` those with an alias starting with
        it; ``owner`` those whose first version that user uploaded; ``since`` and ``until``
        (YYYY-MM-DD, inclusive) those created on those days. ``sort`` is one of
        :data:`ASSET_SORTS` ("updated": the time of the latest upload). Raises BadInput for
        a bad sort, date or page, NotFound for an unknown project or class.
        """
        if sort not in ASSET_SORTS:
            raise BadInput(f"invalid sort {sort!r}: use one of {', '.join(ASSET_SORTS)}")
        if page < 1 or not 1 <= per_page <= 1000:
            raise BadInput(f"invalid page {page} of {per_page}: pages start at 1, "
                           "and hold 1 to 1000 items")
        start, end = _day(since, "since"), _day(until, "until")
        with self.db.read() as s:
            klass = self._class(s, self._project(s, caller, project), cls)
            where: list[Any] = [Asset.class_id == klass.id]
            if tag:
                where.append(self._has_tag(s, tag))
            if alias:
                where.append(exists().where(Alias.asset_id == Asset.id,
                                            Alias.name.startswith(alias, autoescape=True)))
            if owner:
                earlier = aliased(Version)
                first = (select(func.min(earlier.id)).where(earlier.asset_id == Version.asset_id)
                         .scalar_subquery())
                where.append(Asset.id.in_(
                    select(Version.asset_id).join(User, Version.author_id == User.id)
                    .where(User.username == owner, Version.id == first)))
            if start is not None:
                where.append(Asset.created >= start)
            if end is not None:
                where.append(Asset.created < end + timedelta(days=1))
            updated = (select(func.max(Version.created)).where(Version.asset_id == Asset.id)
                       .correlate(Asset).scalar_subquery())
            column: Any = {"ordinal": Asset.ordinal, "title": Asset.title,
                           "created": Asset.created, "updated": updated}[sort]
            order = [column.desc() if descending else column.asc(), Asset.ordinal]
            total = s.scalar(select(func.count()).select_from(Asset).where(*where)) or 0
            assets = s.scalars(select(Asset).where(*where).order_by(*order)
                               .offset((page - 1) * per_page).limit(per_page)).all()
            items = self._asset_dicts(s, klass, list(assets))
            return {"items": items, "total": total,
                    "next_page": page + 1 if page * per_page < total else None}

    @staticmethod
    def _has_tag(s: Session, tag: str) -> Any:
        # Tags are a JSON list in one column: each database looks inside it its own way.
        if s.get_bind().dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return cast(Asset.tags, JSONB).contains([tag])
        listed = func.json_each(Asset.tags).table_valued("value")
        return exists().select_from(listed).where(cast(listed.c.value, String) == tag)

    def version_files(self, caller: Caller, project: str, cls: str, name: int | str,
                      version: str, page: int = 1, per_page: int = 200, folder: str = ""
                      ) -> VersionFolder:
        """Return one version of an asset with one page of one folder's entries, by name.

        ``{"version", "metadata", "inputs", "folder", "entries": [{"name", "path", "kind",
        "id", "size"}], "files", "total_entries", "folder_bytes", "total_bytes",
        "next_page", "problems"}``: ``folder`` is "" for the root or a path like "a/b";
        ``kind`` is "tree" (a folder, its size the total below it), "blob" or "link";
        ``files`` the entries of the page that are not folders; ``total_bytes`` the
        version's; ``problems`` names the trees on the way the remote is missing.

        Only the trees from the root down to ``folder`` are read, one query each, and only
        the page's entries are parsed: a version of 100,000 files costs no more than its
        folder's depth. Raises NotFound for an unknown asset, version or folder, BadInput
        for a bad page.
        """
        if page < 1 or not 1 <= per_page <= 10_000:
            raise BadInput(f"invalid page {page} of {per_page}: pages start at 1, "
                           "and hold 1 to 10000 files")
        parts = [p for p in folder.split("/") if p]
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            asset = self._asset(s, self._class(s, proj, cls), name)
            row = Catalog._find_version(s, asset, version)
            described = self._versions(s, Version.id == row.id)[0]
            manifest, lines, total_bytes, problems = self._folder_lines(
                s, proj.id, row.manifest_id, row.tree_id, parts,
                f"{described['name']}/{described['version']}")
        start = (page - 1) * per_page
        prefix = "".join(p + "/" for p in parts)
        entries: list[Entry] = []
        for line in lines[start:start + per_page]:
            kind, oid, size, entry_name = _tree_line(line)
            entries.append({"name": entry_name, "path": prefix + entry_name, "kind": kind,
                            "id": oid, "size": size})
        return {
            "version": described,
            "metadata": manifest.metadata if manifest is not None else {},
            "inputs": [{"name": i.name, "label": i.label, "manifest": i.manifest}
                       for i in manifest.inputs] if manifest is not None else [],
            "folder": "/".join(parts),
            "entries": entries,
            "files": [e for e in entries if e["kind"] != "tree"],
            "total_entries": len(lines),
            "folder_bytes": total_bytes[-1],
            "total_bytes": total_bytes[0],
            "next_page": page + 1 if start + per_page < len(lines) else None,
            "problems": problems,
        }

    def _folder_lines(self, s: Session, project_id: int, manifest_id: str, root: str,
                      parts: list[str], label: str
                      ) -> tuple[Manifest | None, list[bytes], list[int], list[str]]:
        """The manifest, the entry lines of the tree at ``parts`` below ``root`` (unparsed:
        a page parses only its own), the total size of each folder on the way (the root's
        first) and the problems met. One query for the manifest, one per folder."""
        manifest_row = self._object_rows(s, project_id, [manifest_id], with_data=True
                                         ).get(manifest_id)
        manifest = None
        problems = []
        if manifest_row is None or manifest_row.data is None:
            problems.append(f"missing manifest {manifest_id}")
        else:
            try:
                manifest = Manifest.deserialize(manifest_row.data)
            except InvalidObject:
                problems.append(f"not a manifest: {manifest_id}")
        tree, walked, totals = root, "", []
        lines: list[bytes] = []
        for depth in range(len(parts) + 1):
            row = self._object_rows(s, project_id, [tree], with_data=True).get(tree)
            if row is None or not row.verified or row.data is None:
                problems.append(f"missing tree {tree} ({walked or '/'})")
                lines = []
            else:
                lines = _tree_lines(row.data, row.kind == "tree")
            if depth == 0:
                totals.append(sum(_tree_line(line)[2] for line in lines))
            if depth == len(parts):
                break
            part = parts[depth]
            found = _find_line(lines, part)
            if found is None or found[0] != "tree":
                raise NotFound(f"no folder {'/'.join(parts[:depth + 1])!r} in {label}",
                               f"open {label} from its root")
            tree, walked = found[1], walked + part + "/"
            totals.append(found[2])
        return manifest, lines, totals, problems

    def version_totals(self, caller: Caller, project: str, cls: str, name: int | str
                       ) -> dict[str, dict[str, int]]:
        """Return ``{version: {"files", "bytes"}}`` for every version of an asset.

        The trees of all versions are read together, one query per level of depth, and a
        tree shared by versions is counted once: an asset of many versions costs no more
        queries than one of a single version.
        """
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            asset = self._asset(s, self._class(s, proj, cls), name)
            rows = s.execute(select(Version.major, Version.minor, Version.patch,
                                    Version.tree_id).where(Version.asset_id == asset.id)).all()
            entries = self._trees_below(s, proj.id, {row.tree_id for row in rows})
        memo: dict[str, tuple[int, int]] = {}

        def count(tree: str) -> tuple[int, int]:
            if tree not in memo:
                files = size = 0
                for kind, oid, entry_size, _name in entries.get(tree, []):
                    if kind == "tree":
                        below = count(oid)
                        files, size = files + below[0], size + below[1]
                    else:
                        files, size = files + 1, size + entry_size
                memo[tree] = (files, size)
            return memo[tree]

        totals = {}
        for major, minor, patch, tree in rows:
            files, size = count(tree)
            totals[f"{major}.{minor}.{patch}"] = {"files": files, "bytes": size}
        return totals

    def _trees_below(self, s: Session, project_id: int, roots: set[str]
                     ) -> dict[str, list[tuple[str, str, int, str]]]:
        """The entries of every tree reachable from ``roots``, one query per level."""
        entries: dict[str, list[tuple[str, str, int, str]]] = {}
        level = roots
        while level:
            rows = self._object_rows(s, project_id, level, with_data=True)
            below: set[str] = set()
            for oid in level:
                row = rows.get(oid)
                if row is None or row.data is None:
                    entries[oid] = []
                    continue
                try:
                    entries[oid] = _tree_entries(row.data, row.kind == "tree")
                except InvalidObject:
                    entries[oid] = []
                below.update(e[1] for e in entries[oid] if e[0] == "tree")
            level = below - entries.keys()
        return entries

    def diff_versions(self, caller: Caller, project: str, cls: str, name: int | str,
                      old: str, new: str) -> VersionDiff:
        """Return what changed from version ``old`` to ``new`` of one asset:
        ``{"added", "removed", "modified"}``, each a list by path of ``{"path", "id",
        "size"}`` (modified: ``"old_id"``, ``"old_size"`` too). Raises NotFound."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            asset = self._asset(s, self._class(s, proj, cls), name)
            roots = [Catalog._find_version(s, asset, v).tree_id for v in (old, new)]
            return self._diff_trees(s, proj.id, roots[0], roots[1])

    def _diff_trees(self, s: Session, project_id: int, old: str, new: str
                    ) -> VersionDiff:
        """Walk two trees side by side, one query per level of depth, skipping every
        folder whose tree is the same on both sides: a change to one file of 100,000 reads
        only the trees on its path."""
        added: list[ChangedFile] = []
        removed: list[ChangedFile] = []
        modified: list[ModifiedFile] = []
        level: list[tuple[str | None, str | None, str]] = [(old, new, "")] if old != new else []
        while level:
            rows = self._object_rows(s, project_id,
                                     [t for o, n, _ in level for t in (o, n) if t],
                                     with_data=True)
            below: list[tuple[str | None, str | None, str]] = []
            for old_tree, new_tree, prefix in level:
                before, after = _named_entries(rows, old_tree), _named_entries(rows, new_tree)
                for entry in sorted(before.keys() | after.keys()):
                    was, now = before.get(entry), after.get(entry)
                    if was == now:
                        continue
                    path = prefix + entry
                    was_tree = was is not None and was[0] == "tree"
                    now_tree = now is not None and now[0] == "tree"
                    if was_tree or now_tree:
                        below.append((was[1] if was and was_tree else None,
                                      now[1] if now and now_tree else None, path + "/"))
                    if was and not was_tree and now and not now_tree:
                        modified.append({"path": path, "id": now[1], "size": now[2],
                                         "old_id": was[1], "old_size": was[2]})
                        continue
                    if was and not was_tree:
                        removed.append({"path": path, "id": was[1], "size": was[2]})
                    if now and not now_tree:
                        added.append({"path": path, "id": now[1], "size": now[2]})
            level = below
        for listed in (added, removed, modified):
            listed.sort(key=lambda f: f["path"])
        return {"added": added, "removed": removed, "modified": modified}
