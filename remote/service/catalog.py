"""The catalog a project exposes: projects and members, classes, assets, aliases, find
and lineage (the inputs a version names and the versions naming it).

Class rules (``put_class(rules=…)``), every key optional::

    {"required_files": ["README.md", "*.onnx"],   # gitignore-style; each must match a file
     "forbidden_files": ["*.tmp", "secrets/"],    # no file may match any of these
     "max_total_size": 10000000000,               # bytes, all files together
     "max_file_size": 2000000000,                 # bytes, any one file
     "max_file_count": 100000,
     "max_tags": 10, "tag_pattern": "[a-z0-9-]+",  # an asset's tags, when they change
     "max_title_length": 80, "max_description_length": 2000}

``visualisation`` maps gitignore-style patterns to a viewer (``ama.plumbing.rules.VIEWERS``)
or to ``{"viewer", "options"}``.

``schema`` is a JSON Schema the manifest's ``metadata`` must satisfy. Changes of titles,
descriptions, tags and aliases are audited.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ama.plumbing import wire
from ama.plumbing.hashing import check_id
from ama.plumbing.objects import CLASS_NAME_RE, Tree, check_class_name
from ama.plumbing.rules import (
    asset_rule_problems,
    check_rules,
    check_schema,
    check_visualisation,
)
from ama_remote.errors import BadInput, Conflict, NotFound, ValidationFailed
from ama_remote.models import (
    ASSET_STATUSES,
    ROLES,
    Alias,
    Asset,
    AssetClass,
    AuditEntry,
    Membership,
    Project,
    Version,
    VersionInput,
)
from ama_remote.service.common import Caller, ServiceBase, _stamp
from ama_remote.storage import storages_overlap

# put_alias without an expected target: set the alias whatever it points at now.
_ANY = object()


def _check_alias(alias: str) -> None:
    if not isinstance(alias, str) or not CLASS_NAME_RE.match(alias):
        raise BadInput(f"invalid alias {alias!r}: use 1 to 63 of a-z, 0-9, '.', '_', '-', "
                       "starting with a letter or digit")
    if alias.isdigit():
        raise BadInput(f"invalid alias {alias!r}: an alias is never all digits "
                       "(that would read as an ordinal)")
    if alias.startswith("temp_"):
        raise BadInput(f"invalid alias {alias!r}: names starting with temp_ are for "
                       "assets not uploaded yet")


class Catalog(ServiceBase):
    """The catalog a project exposes: projects and members, classes, assets, aliases, find"""

    def create_project(self, name: str, storage_url: str) -> wire.StoredProject:
        """Create project ``name`` storing objects at ``storage_url``; raises Conflict if taken."""
        if not CLASS_NAME_RE.match(name):
            raise BadInput(f"invalid project name {name!r}: use 1 to 63 of a-z, 0-9, '.', '_', "
                           "'-', starting with a letter or digit")
        if "://" not in storage_url:
            raise BadInput(f"invalid storage URL {storage_url!r}: expected file://, s3:// or gs://")

        def work(s: Session) -> wire.StoredProject:
            if s.scalars(select(Project).where(Project.name == name)).first():
                raise Conflict(f"project {name!r} already exists",
                               "choose another name, or run 'ama-server project list'")
            # Presence and verification are per project, but bytes in a storage are not:
            # a project on another's storage could claim the other's objects as its own.
            for other, other_url in s.execute(select(Project.name, Project.storage_url)
                                              .order_by(Project.name)):
                if storages_overlap(storage_url, other_url):
                    raise Conflict(
                        f"storage {storage_url} of project {name!r} would share the storage "
                        f"of project {other!r} ({other_url}); every project needs its own",
                        "give the project a bucket, prefix or folder that neither contains "
                        "nor lies inside another project's ('ama-server project list' shows "
                        "them)")
            project = Project(name=name, storage_url=storage_url, created=self._now())
            s.add(project)
            s.flush()
            return {"name": name, "storage": storage_url, "created": _stamp(project.created)}

        return self.db.run(work)

    def grant(self, project: str, username: str, role: str) -> None:
        """Make ``username`` a ``role`` (reader, writer, admin) of ``project``."""
        if role not in ROLES:
            raise BadInput(f"invalid role {role!r}: use one of {', '.join(ROLES)}")

        def work(s: Session) -> None:
            proj = s.scalars(select(Project).where(Project.name == project)).first()
            if proj is None:
                raise NotFound(f"project {project!r} not found",
                               "run 'ama-server project add' to create it")
            user = self._user(s, username)
            member = s.get(Membership, (proj.id, user.id))
            if member is None or member.role != role:
                self._audit_admin(s, None, "role.grant", username, proj.id,
                                  old=None if member is None else member.role, new=role)
            if member is None:
                s.add(Membership(project_id=proj.id, user_id=user.id, role=role))
            else:
                member.role = role

        self.db.run(work)

    def all_projects(self) -> list[wire.ServerProject]:
        """Return every project on the server, by name, with its storage URL and its
        number of members (for the server's administrators: no caller is checked)."""
        with self.db.read() as s:
            members = dict(s.execute(select(Membership.project_id, func.count())
                                     .group_by(Membership.project_id)).all())
            return [{"name": p.name, "storage": p.storage_url, "created": _stamp(p.created),
                     "members": members.get(p.id, 0)}
                    for p in s.scalars(select(Project).order_by(Project.name))]

    def list_projects(self, caller: Caller) -> list[wire.ProjectRole]:
        """Return the projects the caller can use, each with the caller's role."""
        with self.db.read() as s:
            return self._projects_of(s, caller)

    def get_project(self, caller: Caller, project: str) -> wire.Project:
        """Return a project the caller can use, with its role, classes and storage URL (where
        its objects live, ``ama list -l``); raises NotFound."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            role = next(p["role"] for p in self._projects_of(s, caller) if p["name"] == project)
            classes = s.scalars(select(AssetClass.name).where(AssetClass.project_id == proj.id)
                                .order_by(AssetClass.name)).all()
            return {"name": proj.name, "role": role, "created": _stamp(proj.created),
                    "classes": list(classes), "storage": proj.storage_url}

    def list_classes(self, caller: Caller, project: str) -> list[wire.AssetClass]:
        """Return every class of ``project``, by name."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            return [self._class_dict(k) for k in s.scalars(
                select(AssetClass).where(AssetClass.project_id == proj.id)
                .order_by(AssetClass.name))]

    def get_class(self, caller: Caller, project: str, name: str) -> wire.AssetClass:
        """Return class ``name``; raises NotFound."""
        with self.db.read() as s:
            return self._class_dict(self._class(s, self._project(s, caller, project), name))

    def put_class(self, caller: Caller, project: str, name: str, description: str = "",
                  schema: wire.JSONSchema | None = None, rules: wire.ClassRules | None = None,
                  visualisation: Any = None) -> wire.AssetClass:
        """Create or replace class ``name`` (project admins); raises BadInput for a bad
        name, JSON Schema or rule."""
        check_class_name(name)
        check_schema(schema)
        check_rules(rules)
        check_visualisation(visualisation)

        def work(s: Session) -> wire.AssetClass:
            proj = self._project(s, caller, project, "admin")
            klass = s.scalars(select(AssetClass).where(AssetClass.project_id == proj.id,
                                                       AssetClass.name == name)).first()
            if klass is None:
                klass = AssetClass(project_id=proj.id, name=name, next_ordinal=1,
                                   created=self._now())
                s.add(klass)
            klass.description = description
            klass.schema = schema
            klass.rules = rules or {}
            klass.visualisation = visualisation
            s.flush()
            return self._class_dict(klass)

        return self.db.run(work)

    def list_assets(self, caller: Caller, project: str, cls: str, page: int = 1,
                    per_page: int = 100, deleted: bool = False) -> wire.AssetPage:
        """Return one page of the class's assets by ordinal: ``{"items", "next_page"}``;
        the assets not deleted, or with ``deleted`` only the deleted ones."""
        if page < 1 or not 1 <= per_page <= 1000:
            raise BadInput(f"invalid page {page} of {per_page}: pages start at 1, "
                           "and hold 1 to 1000 items")
        with self.db.read() as s:
            klass = self._class(s, self._project(s, caller, project), cls)
            gone = Asset.deleted.is_not(None) if deleted else Asset.deleted.is_(None)
            assets = s.scalars(select(Asset).where(Asset.class_id == klass.id, gone)
                               .order_by(Asset.ordinal).offset((page - 1) * per_page)
                               .limit(per_page + 1)).all()
            items = self._asset_dicts(s, klass, list(assets[:per_page]))
            return {"items": items, "next_page": page + 1 if len(assets) > per_page else None}

    def get_asset(self, caller: Caller, project: str, cls: str, name: int | str
                  ) -> wire.AssetRecord:
        """Return asset ``name`` (an ordinal or an alias) with its latest version."""
        with self.db.read() as s:
            klass = self._class(s, self._project(s, caller, project), cls)
            return self._asset_dict(s, klass, self._asset(s, klass, name))

    def list_versions(self, caller: Caller, project: str, cls: str, ordinal: int | str
                      ) -> list[wire.Version]:
        """Return every version of an asset, oldest first."""
        with self.db.read() as s:
            klass = self._class(s, self._project(s, caller, project), cls)
            asset = self._asset(s, klass, ordinal)
            return self._versions(s, Version.asset_id == asset.id)

    def update_asset(self, caller: Caller, project: str, cls: str, ordinal: int | str,
                     title: str | None = None, description: str | None = None,
                     tags: list[str] | None = None, status: str | None = None
                     ) -> wire.AssetRecord:
        """Change an asset's title, description, tags or status (writers); each change is
        audited. Raises BadInput for a status not in ASSET_STATUSES."""
        if status is not None and status not in ASSET_STATUSES:
            raise BadInput(f"invalid status {status!r}: use one of {', '.join(ASSET_STATUSES)}")
        if tags is not None and (not isinstance(tags, list)
                                 or not all(isinstance(t, str) and t for t in tags)):
            raise BadInput("tags must be a list of non-empty strings")
        for label, value in (("title", title), ("description", description)):
            if value is not None and not isinstance(value, str):
                raise BadInput(f"{label} must be a string")

        def work(s: Session) -> wire.AssetRecord:
            proj = self._project(s, caller, project, "writer")
            klass = self._class(s, proj, cls)
            asset = self._asset(s, klass, ordinal, lock=True)
            changes = {"title": title, "description": description,
                       "tags": sorted(set(tags)) if tags is not None else None,
                       "status": status}
            problems = asset_rule_problems(klass.rules, title, description, changes["tags"])
            if problems:
                raise ValidationFailed(
                    f"the change breaks {len(problems)} rule(s) of class {cls!r}: "
                    + "; ".join(problems),
                    f"see the rules with 'ama class info {cls}'", problems=problems)
            for field, new in changes.items():
                old = getattr(asset, field)
                if new is None or new == old:
                    continue
                setattr(asset, field, new)
                self._audit(s, caller, proj, klass, asset.ordinal, field,
                            f"{cls}/{asset.ordinal}", old, new)
            s.flush()
            return self._asset_dict(s, klass, asset)

        return self.db.run(work)

    def delete_asset(self, caller: Caller, project: str, cls: str, ordinal: int | str,
                     restore: bool = False) -> wire.AssetRecord:
        """Delete an asset softly (project admins), or with ``restore`` bring it back;
        audited. A deleted asset and its versions are hidden from listings, lookups,
        clones and commits, and its aliases stay reserved; its objects stay stored. Doing
        either twice changes nothing more. Returns the asset."""
        def work(s: Session) -> wire.AssetRecord:
            proj = self._project(s, caller, project, "admin")
            klass = self._class(s, proj, cls)
            asset = self._asset(s, klass, ordinal, lock=True, deleted=True)
            if restore and asset.deleted is not None:
                self._audit(s, caller, proj, klass, asset.ordinal, "deleted",
                            f"{cls}/{asset.ordinal}", _stamp(asset.deleted), None)
                asset.deleted = None
            elif not restore and asset.deleted is None:
                asset.deleted = self._now()
                self._audit(s, caller, proj, klass, asset.ordinal, "deleted",
                            f"{cls}/{asset.ordinal}", None, _stamp(asset.deleted))
            s.flush()
            return self._asset_dict(s, klass, asset)

        return self.db.run(work)

    def _audit(self, s: Session, caller: Caller, proj: Project, klass: AssetClass,
               ordinal: int | None, field: str, target: str, old: Any, new: Any) -> None:
        s.add(AuditEntry(project_id=proj.id, class_id=klass.id, ordinal=ordinal,
                         user_id=caller.user_id, at=self._now(), field=field, target=target,
                         old=old, new=new))

    def put_alias(self, caller: Caller, project: str, cls: str, alias: str,
                  ordinal: int | str, expected: Any = _ANY) -> wire.AliasRecord:
        """Point ``alias`` at asset ``ordinal`` (writers), moving it if it named another
        asset; audited. Raises BadInput for a name that cannot be an alias, and Conflict
        when ``expected`` (an ordinal, or None for "no such alias yet") is given and the
        alias does not point there now."""
        _check_alias(alias)

        def work(s: Session) -> wire.AliasRecord:
            proj = self._project(s, caller, project, "writer")
            klass = self._class(s, proj, cls)
            asset = self._asset(s, klass, ordinal)
            # Locked so that two compare-and-swaps on one alias cannot both win.
            row = s.scalars(select(Alias).where(Alias.class_id == klass.id,
                                                Alias.name == alias).with_for_update()).first()
            if expected is not _ANY:
                now = None if row is None else s.get(Asset, row.asset_id).ordinal  # type: ignore[union-attr]
                if now != expected:
                    raise Conflict(
                        f"alias {cls}/{alias} does not exist, not pointing at {cls}/{expected}"
                        if now is None else
                        f"alias {cls}/{alias} exists already: it points at {cls}/{now}"
                        if expected is None else
                        f"alias {cls}/{alias} points at {cls}/{now}, not {cls}/{expected}",
                        f"run 'ama list {cls}' to see where it points now")
            old = None
            if row is None:
                s.add(Alias(class_id=klass.id, name=alias, asset_id=asset.id))
            elif row.asset_id != asset.id:
                old = f"{cls}/{s.get(Asset, row.asset_id).ordinal}"  # type: ignore[union-attr]
                row.asset_id = asset.id
            if row is None or old is not None:
                self._audit(s, caller, proj, klass, asset.ordinal, "alias", f"{cls}/{alias}",
                            old, f"{cls}/{asset.ordinal}")
            s.flush()
            return {"class": cls, "alias": alias, "ordinal": asset.ordinal,
                    "name": f"{cls}/{asset.ordinal}"}

        return self.db.run(work)

    def delete_alias(self, caller: Caller, project: str, cls: str, alias: str) -> None:
        """Remove ``alias`` (writers); audited. Raises NotFound when it does not exist."""
        def work(s: Session) -> None:
            proj = self._project(s, caller, project, "writer")
            klass = self._class(s, proj, cls)
            row = s.scalars(select(Alias).where(Alias.class_id == klass.id,
                                                Alias.name == alias)).first()
            if row is None:
                raise NotFound(f"alias {cls}/{alias} not found",
                               f"run 'ama list {cls}' to see the aliases of this class")
            ordinal = s.get(Asset, row.asset_id).ordinal  # type: ignore[union-attr]
            s.delete(row)
            self._audit(s, caller, proj, klass, ordinal, "alias", f"{cls}/{alias}",
                        f"{cls}/{ordinal}", None)

        self.db.run(work)

    def find(self, caller: Caller, project: str, hash: str | None = None,
             alias: str | None = None, cls: str | None = None,
             blob: str | None = None) -> list[wire.FoundVersion]:
        """Return versions, oldest first: those whose root tree is ``hash``; the latest
        version of the asset named ``alias``; or those containing blob ``blob`` (each with
        the ``paths`` where it appears). ``cls`` narrows the search to one class."""
        if sum(x is not None for x in (hash, alias, blob)) != 1:
            raise BadInput("find needs exactly one of hash, alias or blob")
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            where = [AssetClass.project_id == proj.id, Asset.deleted.is_(None)]
            if cls is not None:
                where.append(AssetClass.id == self._class(s, proj, cls).id)
            if hash is not None:
                # A version found by its tree or an alias is a FoundVersion without paths.
                return cast(list[wire.FoundVersion], self._versions(
                    s, *where, Version.tree_id == check_id(hash, "hash")))
            if alias is not None:
                query = (select(Asset.id).join(AssetClass, Asset.class_id == AssetClass.id)
                         .join(Alias, Alias.asset_id == Asset.id)
                         .where(*where, Alias.name == alias))
                found: list[wire.FoundVersion] = []
                for asset_id in s.scalars(query):
                    latest = self._latest(s, asset_id)
                    if latest is not None:
                        found += cast(list[wire.FoundVersion],
                                      self._versions(s, Version.id == latest.id))
                return found
            assert blob is not None
            check_id(blob, "blob id")
            versions = self._versions(s, *where)
            memo: dict[str, list[str]] = {}
            found = []
            for version in versions:
                paths = self._paths_of(s, proj.id, version["tree"], blob, memo)
                if paths:
                    found.append({**version, "paths": paths})
            return found

    def _paths_of(self, s: Session, project_id: int, tree_id: str, blob: str,
                  memo: dict[str, list[str]]) -> list[str]:
        """Paths below ``tree_id`` where ``blob`` appears (trees shared across versions are
        walked once)."""
        if tree_id in memo:
            return memo[tree_id]
        memo[tree_id] = []
        row = self._object_rows(s, project_id, [tree_id], with_data=True).get(tree_id)
        paths: list[str] = []
        if row is not None and row.data is not None:
            for entry in Tree.deserialize(row.data).entries:
                if entry.type == "tree":
                    paths += [f"{entry.name}/{p}" for p in
                              self._paths_of(s, project_id, entry.id, blob, memo)]
                elif entry.id == blob:
                    paths.append(entry.name)
        memo[tree_id] = paths
        return paths

    def version_size(self, caller: Caller, project: str, cls: str, ordinal: int | str,
                     version: str) -> wire.VersionSize:
        """Return ``{"bytes", "files"}`` of one version, from its stored trees."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            asset = self._asset(s, self._class(s, proj, cls), ordinal)
            row = self._find_version(s, asset, version)
            _, files, _ = self._reachable(s, proj.id, row.manifest_id)
            return {"bytes": sum(size for _, _, size in files), "files": len(files)}

    @staticmethod
    def _find_version(s: Session, asset: Asset, version: str) -> Version:
        parts = version.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            raise BadInput(f"invalid version {version!r}: expected e.g. 0.0.1")
        major, minor, patch = map(int, parts)
        row = s.scalars(select(Version).where(Version.asset_id == asset.id,
                                              Version.major == major, Version.minor == minor,
                                              Version.patch == patch)).first()
        if row is None:
            raise NotFound(f"version {version} of asset {asset.ordinal} not found",
                           "run 'ama versions' to list the versions of this asset")
        return row

    def _version_by_manifest(self, s: Session, proj: Project, manifest: str) -> Version:
        check_id(manifest, "manifest id")
        row = s.scalars(select(Version).join(Asset, Version.asset_id == Asset.id)
                        .join(AssetClass, Asset.class_id == AssetClass.id)
                        .where(AssetClass.project_id == proj.id, Asset.deleted.is_(None),
                               Version.manifest_id == manifest)).first()
        if row is None:
            raise NotFound(f"no version of project {proj.name!r} has manifest {manifest}",
                           "run 'ama find' to look a version up by hash or alias")
        return row

    def inputs(self, caller: Caller, project: str, manifest: str) -> list[wire.Input]:
        """Return the inputs of the version whose manifest is ``manifest``: each edge's
        manifest, name and label, and ``version`` (that version here, or None)."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            version = self._version_by_manifest(s, proj, manifest)
            edges = s.scalars(select(VersionInput).where(VersionInput.version_id == version.id)
                              .order_by(VersionInput.name)).all()
            found = {v["manifest"]: v for v in self._versions(
                s, AssetClass.project_id == proj.id, Asset.deleted.is_(None),
                Version.manifest_id.in_([e.manifest_id for e in edges]))} if edges else {}
            return [{"manifest": e.manifest_id, "name": e.name, "label": e.label,
                     "version": found.get(e.manifest_id)} for e in edges]

    def dependents(self, caller: Caller, project: str, manifest: str) -> list[wire.Dependent]:
        """Return the versions that name ``manifest`` as an input, each with its ``label``."""
        with self.db.read() as s:
            proj = self._project(s, caller, project)
            check_id(manifest, "manifest id")
            query = (self._version_query().add_columns(VersionInput.label)
                     .join(VersionInput, VersionInput.version_id == Version.id)
                     .where(AssetClass.project_id == proj.id, Asset.deleted.is_(None),
                            VersionInput.manifest_id == manifest)
                     .order_by(AssetClass.name, Asset.ordinal, Version.major, Version.minor,
                               Version.patch))
            return [{**self._version_dict(row[:6]), "label": row[6]} for row in s.execute(query)]
