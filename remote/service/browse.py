"""What the web dashboard reads that the API has no route for: a filtered and sorted page
of a class's assets, a version's files page by page with its totals, the totals of many
versions at once, and the difference between two versions.

Each read checks the caller's role like every other part, and each costs a number of
queries bounded by the depth of the trees it walks, never by the number of assets, versions
or files: a class of 10,000 assets and a version of 100,000 files must still answer at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import String, cast, exists, func, select
from sqlalchemy.orm import Session, aliased

from ama.plumbing.objects import InvalidObject
from ama_remote.errors import BadInput
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


class Browsing(ServiceBase):
    """The dashboard's reads: filtered asset pages, version files and totals, diffs."""

    def browse_assets(self, caller: Caller, project: str, cls: str, *, sort: str = "ordinal",
                      descending: bool = False, tag: str | None = None,
                      alias: str | None = None, owner: str | None = None,
                      since: str | None = None, until: str | None = None, page: int = 1,
                      per_page: int = 50) -> dict[str, Any]:
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
                      version: str, page: int = 1, per_page: int = 200) -> dict[str, Any]:
        """Return one version of an asset with one page of its files, by path.

        ``{"version", "metadata", "inputs", "files": [{"path", "id", "size"}], "total_files",
        "total_bytes", "next_page", "problems"}``; ``problems`` names objects the remote is
        missing. Raises NotFound for an unknown asset or version, BadInput for a bad page.
        """
        if page < 1 or not 1 <= per_page <= 10_000:
            raise BadInput(f"invalid page {page} of {per_page}: pages start at 1, "
                           "and hold 1 to 10000 files")
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            asset = self._asset(s, self._class(s, proj, cls), name)
            row = Catalog._find_version(s, asset, version)
            described = self._versions(s, Version.id == row.id)[0]
            manifest, files, problems = self._reachable(s, proj.id, row.manifest_id)
        files.sort()
        start = (page - 1) * per_page
        return {
            "version": described,
            "metadata": manifest.metadata if manifest is not None else {},
            "inputs": [{"name": i.name, "label": i.label, "manifest": i.manifest}
                       for i in manifest.inputs] if manifest is not None else [],
            "files": [{"path": p, "id": oid, "size": size}
                      for p, oid, size in files[start:start + per_page]],
            "total_files": len(files), "total_bytes": sum(size for _, _, size in files),
            "next_page": page + 1 if start + per_page < len(files) else None,
            "problems": problems,
        }

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
                      old: str, new: str) -> dict[str, Any]:
        """Return what changed from version ``old`` to ``new`` of one asset:
        ``{"added", "removed", "modified"}``, each a list by path of ``{"path", "id",
        "size"}`` (modified: ``"old_id"``, ``"old_size"`` too). Raises NotFound."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            asset = self._asset(s, self._class(s, proj, cls), name)
            manifests = [Catalog._find_version(s, asset, v).manifest_id
                         for v in (old, new)]
            before = {p: (oid, size) for p, oid, size in
                      self._reachable(s, proj.id, manifests[0])[1]}
            after = {p: (oid, size) for p, oid, size in
                     self._reachable(s, proj.id, manifests[1])[1]}
        added = [{"path": p, "id": after[p][0], "size": after[p][1]}
                 for p in sorted(after.keys() - before.keys())]
        removed = [{"path": p, "id": before[p][0], "size": before[p][1]}
                   for p in sorted(before.keys() - after.keys())]
        modified = [{"path": p, "id": after[p][0], "size": after[p][1],
                     "old_id": before[p][0], "old_size": before[p][1]}
                    for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
        return {"added": added, "removed": removed, "modified": modified}
