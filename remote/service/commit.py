"""Committing a version: ordinals, the compare-and-swap on a version's parent, the
check that every object is stored, class rules, and idempotency keys.
"""

from __future__ import annotations

from typing import TypedDict, cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from ama.plumbing import wire
from ama.plumbing.crash import crash_point, hold_point
from ama.plumbing.hashing import check_id, is_id
from ama.plumbing.objects import (
    MAX_LINK_TARGET_BYTES,
    Manifest,
    decode_link_target,
    link_problem,
    path_problems,
)
from ama.plumbing.rules import rule_problems
from ama_remote.errors import BadInput, Conflict, NotStored, StillVerifying, ValidationFailed
from ama_remote.models import (
    Asset,
    AssetClass,
    IdempotencyKey,
    Project,
    Verification,
    Version,
    VersionInput,
)
from ama_remote.service.common import Caller, _written_by
from ama_remote.service.gc import lock_against_marking, marked, recheck
from ama_remote.service.packs import Packs
from ama_remote.storage.base import Backend

BUMPS = ("patch", "minor", "major")

# What an idempotency key is recorded with: a repeat must ask for exactly this again.
_Request = TypedDict("_Request", {"class": str, "asset": int | None, "parent": str | None,
                                  "manifest": str, "bump": str})


def _bump(number: tuple[int, int, int], bump: str) -> tuple[int, int, int]:
    major, minor, patch = number
    if bump == "major":
        return major + 1, 0, 0
    if bump == "minor":
        return major, minor + 1, 0
    return major, minor, patch + 1


class _Marked(Exception):
    """A commit reached objects the server's garbage collection marked (docs/design.md §8):
    its transaction is given up, and the marks settled before it is tried again."""

    def __init__(self, project_id: int, storage_url: str, ids: list[str]) -> None:
        super().__init__(f"{len(ids)} marked object(s)")
        self.project_id, self.storage_url, self.ids = project_id, storage_url, ids


class _Unread(Exception):
    """A commit needs blobs read from storage (link targets, proxy descriptors): its
    transaction is given up, they are read outside it, and it is tried again with them. A
    read of storage never holds the database's write lock (on SQLite, every project's)."""

    def __init__(self, project_id: int, storage_url: str,
                 wanted: dict[str, tuple[int, str]]) -> None:
        super().__init__(f"{len(wanted)} blob(s) to read")
        self.project_id, self.storage_url, self.wanted = project_id, storage_url, wanted


def _rule_problems(klass: AssetClass, manifest: Manifest,
                   files: list[tuple[str, str, int]]) -> list[str]:
    """Return one line per broken class rule (empty when the version passes them all)."""
    return rule_problems(klass.schema, klass.rules, manifest.metadata, files)


class Committing(Packs):
    """Committing a version: ordinals, the compare-and-swap on a version's parent, the"""

    def commit(self, caller: Caller, project: str, cls: str, asset: int | None,
               parent: str | None, manifest: str, idempotency_key: str,
               bump: str = "patch") -> wire.Version:
        """Record ``manifest`` as the next version of ``cls/asset`` (a new asset when None).

        In one transaction: allocate the ordinal of a new asset; check ``parent`` is still
        the asset's latest version (Conflict naming the latest); check every object reachable
        from the manifest is uploaded and verified (ValidationFailed listing the missing);
        check the class rules (ValidationFailed naming each broken rule); record the version
        and its inputs. The same ``idempotency_key`` again returns the first result.
        Returns ``{"class","ordinal","name","version","manifest","parent","created",…}``.
        """
        check_id(manifest, "manifest id")
        if parent is not None:
            check_id(parent, "parent manifest id")
        if bump not in BUMPS:
            raise BadInput(f"invalid bump {bump!r}: use patch, minor or major")
        if not isinstance(idempotency_key, str) or not 1 <= len(idempotency_key) <= 200:
            raise BadInput("an idempotency key is 1 to 200 characters")
        if asset is not None and (not isinstance(asset, int) or asset < 1):
            raise BadInput(f"invalid asset ordinal {asset!r}: ordinals start at 1")
        if asset is None and parent is not None:
            raise BadInput(f"a new asset of {cls} has no parent version, but {parent} was given",
                           "give the asset's ordinal to upload a new version of it")
        request: _Request = {"class": cls, "asset": asset, "parent": parent,
                             "manifest": manifest, "bump": bump}
        known: dict[str, bytes] = {}  # blobs read outside the transaction, by id
        for _attempt in range(4):
            try:
                result = self.db.run(lambda s: self._commit(s, caller, project, request,
                                                            idempotency_key, known))
                break
            except _Unread as e:
                known.update(self._read_blobs(e))
            except _Marked as e:
                # The server's garbage collection marked objects this version names: keep
                # those whose bytes are there, and fail naming those it deleted.
                gone = recheck(self, e.project_id, e.storage_url, e.ids)
                if gone:
                    raise ValidationFailed(
                        f"{len(gone)} object(s) reachable from manifest {manifest} are "
                        f"missing from project {project!r}: the server's garbage collection "
                        "removed them before this commit",
                        "upload them again ('ama upload' sends what is missing) and commit "
                        "again", problems=[f"missing object {oid}" for oid in gone]) from None
        else:
            raise Conflict(f"the server's garbage collection kept marking the objects of "
                           f"manifest {manifest}", "commit again")
        crash_point("server.commit.committed")
        return result

    def _read_blobs(self, unread: _Unread) -> dict[str, bytes]:
        """The blobs a commit wants, each read once from storage (checked against its id),
        in a transaction that only reads."""
        storage = self._storage(unread.storage_url)
        with self.db.read() as s:
            return {oid: self._read_checked(s, unread.project_id, storage, oid, size, what)
                    for oid, (size, what) in unread.wanted.items()}

    def _commit(self, s: Session, caller: Caller, project: str, request: _Request,
                key: str, known: dict[str, bytes]) -> wire.Version:
        proj = self._project(s, caller, project, "writer")
        lock_against_marking(s)
        cls, asset_no, parent = request["class"], request["asset"], request["parent"]
        manifest = request["manifest"]
        prior = s.get(IdempotencyKey, (proj.id, key))
        if prior is not None:
            if prior.request != request:
                raise BadInput(f"idempotency key {key!r} was already used for another commit",
                               "use a new key for a new commit")
            return cast(wire.Version, dict(prior.result))  # this method's own result
        # Claim the key first: a concurrent commit with the same key waits on this row and,
        # retried, returns this commit's result.
        claim = IdempotencyKey(project_id=proj.id, key=key, user_id=caller.user_id,
                               request=request, result=None, created=self._now())
        s.add(claim)
        s.flush()
        klass = self._class(s, proj, cls, lock=asset_no is None)
        target: Asset | None = None
        latest: Version | None = None
        number = (0, 0, 0)
        if asset_no is not None:
            target = self._asset(s, klass, asset_no, lock=True)
            latest = self._latest(s, target.id)
            if latest is not None:
                current = f"{latest.major}.{latest.minor}.{latest.patch}"
                if parent != latest.manifest_id:
                    raise Conflict(
                        f"{cls}/{asset_no} has moved on: its latest version is {current} "
                        f"(manifest {latest.manifest_id}), not "
                        f"{parent if parent else 'none'}",
                        f"run 'ama fetch {cls}/{asset_no}' and 'ama switch --version {current}', "
                        "then upload again",
                        latest=latest.manifest_id)
                same = s.scalars(select(Version).where(Version.asset_id == target.id,
                                                       Version.manifest_id == manifest)).first()
                if same is not None:
                    raise Conflict(
                        f"{cls}/{asset_no} already has manifest {manifest} as version "
                        f"{same.major}.{same.minor}.{same.patch}",
                        "there is nothing new to upload", latest=latest.manifest_id)
                number = _bump((latest.major, latest.minor, latest.patch), request["bump"])
        links: list[tuple[str, str, int]] = []
        trees: list[str] = []
        proxies: list[tuple[str, str, int]] = []
        parsed, files, missing = self._reachable(s, proj.id, manifest, links, trees, proxies)
        if not missing:
            condemned = marked(s, proj.id, [manifest, *trees, *(oid for _, oid, _ in files)])
            if condemned:
                raise _Marked(proj.id, proj.storage_url, condemned)
        if missing:
            _refuse_unverified(s, proj.id, manifest, missing)
            raise ValidationFailed(
                f"{len(missing)} object(s) reachable from manifest {manifest} are missing "
                f"from project {project!r} (not uploaded, or freed by the server's garbage "
                "collection)",
                "upload them ('ama upload' sends what is missing) and commit again",
                problems=missing)
        assert parsed is not None
        _refuse_paths(path_problems(path for path, _, _ in files),
                      "path(s) that no asset directory may hold",
                      "remove them (names such as .ama are ama's own), then upload again")
        wanted = self._blobs_wanted(s, proj, links, proxies, known)
        if wanted:
            raise _Unread(proj.id, proj.storage_url, wanted)
        _refuse_paths(self._link_problems(links, known),
                      "symbolic link(s) pointing outside it",
                      "make their targets relative paths inside the asset, or upload them "
                      "with 'ama add --follow-symlinks' or '--skip-symlinks'")
        _refuse_paths(self._proxy_problems(s, proj, proxies, known),
                      "proxy file(s) whose descriptor no client may follow",
                      "add proxies with 'ama add --proxy' from s3://, gs://, http:// or "
                      "https:// sources, then upload again")
        problems = _rule_problems(klass, parsed, files)
        if problems:
            raise ValidationFailed(
                f"the version breaks {len(problems)} rule(s) of class {cls!r}",
                f"fix them, or run 'ama class info -n {cls}' to read the rules", problems=problems)
        now = self._now()
        if target is None:
            target = Asset(class_id=klass.id, ordinal=klass.next_ordinal, title="",
                           description="", tags=[], created=now)
            klass.next_ordinal += 1
            s.add(target)
            s.flush()
        version = Version(asset_id=target.id, major=number[0], minor=number[1], patch=number[2],
                          manifest_id=manifest, tree_id=parsed.tree,
                          parent_id=latest.id if latest else None, author_id=caller.user_id,
                          created=now)
        s.add(version)
        s.flush()
        for item in parsed.inputs:
            s.add(VersionInput(version_id=version.id, manifest_id=item.manifest, name=item.name,
                               label=item.label))
        result: wire.Version = {
            "class": cls, "ordinal": target.ordinal, "name": f"{cls}/{target.ordinal}",
            "version": ".".join(map(str, number)), "manifest": manifest,
            "parent": latest.manifest_id if latest else None, "tree": parsed.tree,
            **_written_by(parsed, caller.username, now)}
        claim.result = result
        crash_point("server.commit.recorded")
        return result

    def _blobs_wanted(self, s: Session, proj: Project, links: list[tuple[str, str, int]],
                      proxies: list[tuple[str, str, int]], known: dict[str, bytes]
                      ) -> dict[str, tuple[int, str]]:
        """id -> (size, what) of the link blobs and proxy descriptors the checks below read
        that are not ``known`` yet (each once, however many paths name it); those too
        long to be one are never read."""
        from ama.plumbing.proxy import MAX_DESCRIPTOR_BYTES

        wanted = {oid: (size, "link blob") for _, oid, size in links
                  if size <= MAX_LINK_TARGET_BYTES and oid not in known}
        if proxies:
            rows = self._object_rows(s, proj.id, {oid for _, oid, _ in proxies})
            wanted.update((oid, (rows[oid].size, "proxy descriptor")) for _, oid, _ in proxies
                          if rows[oid].size <= MAX_DESCRIPTOR_BYTES and oid not in known)
        return wanted

    def _proxy_problems(self, s: Session, proj: Project, proxies: list[tuple[str, str, int]],
                        known: dict[str, bytes]) -> list[tuple[str, str]]:
        """``(path, why)`` for each proxy ``(path, descriptor id, size)`` whose descriptor
        is not one :func:`~ama.plumbing.proxy.parse_descriptor` accepts (a scheme no client
        fetches, such as ``file://``; a size over the largest object this server takes), or
        describes another size than its tree entry says. Each descriptor was read from the
        project's storage and checked against its id (``known``)."""
        from ama.plumbing.objects import InvalidObject
        from ama.plumbing.proxy import MAX_DESCRIPTOR_BYTES, parse_descriptor

        if not proxies:
            return []
        rows = self._object_rows(s, proj.id, {oid for _, oid, _ in proxies})
        found = []
        for path, oid, size in proxies:
            stored = rows[oid].size  # _reachable found every one stored
            if stored > MAX_DESCRIPTOR_BYTES:
                found.append((path, f"its descriptor is longer than {MAX_DESCRIPTOR_BYTES} "
                                    "bytes"))
                continue

            data = known[oid]
            try:
                descriptor = parse_descriptor(data, self.max_object_bytes)
            except InvalidObject as e:
                found.append((path, e.message))
                continue
            if descriptor.size != size:
                found.append((path, f"its descriptor says {descriptor.size} bytes, the tree "
                                    f"{size}"))
        return found

    def _read_checked(self, s: Session, project_id: int, storage: Backend, oid: str,
                      size: int, what: str) -> bytes:
        """The ``size`` bytes of the small stored object ``oid`` (a ``what``), checked
        against its id; raises ValidationFailed naming it when they are not."""
        from ama_remote.service.objects import _CheckedStream

        def corrupt(detail: str) -> ValidationFailed:
            return ValidationFailed(f"the {what} {oid} is damaged: {detail}",
                                    "upload the version again")
        hold_point("server.commit.read")
        return _CheckedStream(self._open_stored(s, project_id, storage, oid, size),
                              oid, size, corrupt).read_all()

    @staticmethod
    def _link_problems(links: list[tuple[str, str, int]], known: dict[str, bytes]
                       ) -> list[tuple[str, str]]:
        """``(path, why)`` for each link ``(path, blob id, size)`` whose target
        :func:`~ama.plumbing.objects.link_problem` refuses. A link's blob is its target
        path: it was read from the project's storage and checked against its id
        (``known``)."""
        targets: dict[str, str | None] = {}
        found = []
        for path, oid, size in links:
            if oid not in targets:
                if size > MAX_LINK_TARGET_BYTES:
                    targets[oid] = None
                else:
                    try:
                        targets[oid] = decode_link_target(known[oid])
                    except BadInput:
                        targets[oid] = None
            target = targets[oid]
            if target is None:
                found.append((path, "its target is not a UTF-8 path of at most "
                                    f"{MAX_LINK_TARGET_BYTES} bytes"))
            elif (why := link_problem(path, target)) is not None:
                found.append((path, why))
        return found


def _refuse_unverified(s: Session, project_id: int, manifest: str, missing: list[str]) -> None:
    """Refuse a version whose ``missing`` objects are all of uploads in parts the server is
    still hashing (StillVerifying: the client retries), or name the refusal of one whose
    bytes hashed wrong (ValidationFailed); return when some are simply missing."""
    ids = [next(w for w in problem.split() if is_id(w)) for problem in missing
           if any(is_id(w) for w in problem.split())]
    rows = s.execute(select(Verification.oid, Verification.failure,
                            Verification.failure_code).where(
        Verification.project_id == project_id, Verification.oid.in_(ids))).all()
    jobs = {oid: failure for oid, failure, _ in rows}
    full = [failure for _, failure, code in rows if failure is not None and code == 507]
    if full:  # not the bytes' fault: their parts are kept for the next upload
        raise NotStored(len(full), manifest, full[0])
    refused = [failure for failure in jobs.values() if failure is not None]
    if refused:
        raise ValidationFailed(
            f"{len(refused)} object(s) reachable from manifest {manifest} were refused when "
            f"the server hashed them: {refused[0]}",
            "upload them again ('ama upload' sends what is missing) and commit again",
            problems=refused)
    if jobs and len(jobs) == len(ids) == len(missing):
        raise StillVerifying(sorted(jobs), manifest)


def _refuse_paths(found: list[tuple[str, str]], what: str, hint: str) -> None:
    """Refuse a version with ``found`` (path, why) problems of one kind, naming the first."""
    if found:
        raise ValidationFailed(
            f"the version holds {len(found)} {what}, such as {found[0][0]!r}", hint,
            problems=[f"{path}: {why}" for path, why in found])
