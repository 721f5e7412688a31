"""``ama git add|remove|status|sync`` and the checks ama's git hooks run: a git work tree's
asset checkouts kept in step with its ``ama.lock`` (:mod:`ama.porcelain.lockfile`).

Each checkout is an asset directory at a folder of the work tree that ``.gitignore`` lists.
:func:`sync` brings every checkout to the version the lock names (``post-checkout`` and
``post-merge`` run it); :func:`check_commit` is ``pre-commit`` (no checkout modified or out
of step, every newly locked version on its remote) and :func:`check_push` is ``pre-push``
(every version named by a pushed commit's lock on its remote, no never-uploaded asset).
"""

from __future__ import annotations

import os
import shlex
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.gitrepo import GitRepo, PushedRef
from ama.plumbing.worktree import META_DIR
from ama.porcelain.lockfile import LOCK_FILE, BadLock, Lock, LockEntry, check_path

if TYPE_CHECKING:
    from ama.porcelain.asset import Asset

Progress = Callable[[int, int], None]
STAMP = "ama/pre-commit.ok"

# The states of a checkout (``ama git status``).
IN_STEP = "in-step"  # holds the locked version, nothing changed
OTHER_VERSION = "other-version"  # holds another version (or another asset)
MODIFIED = "modified"  # holds the locked version with changes not uploaded
MISSING = "missing"  # no asset directory at the path
TEMP = "temp"  # the locked asset was never uploaded (the directory holds it)


class OutOfStep(AmaError):
    """Checkouts that do not match ``ama.lock``, or versions their remote lacks."""


@dataclass(frozen=True)
class CheckoutState:
    """One lock entry and what its folder holds."""

    entry: LockEntry
    state: str
    holds: str | None = None  # "<name> <version>" the folder holds, when it holds an asset
    changes: tuple[str, ...] = ()  # changed paths (for MODIFIED and TEMP)

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "state": self.state, "holds": self.holds,
                "changes": list(self.changes)}


def q(path: str) -> str:
    """A path as a user can paste it into a shell."""
    return shlex.quote(path)


# -- reading the state of checkouts -----------------------------------------------------------


def _open_asset(folder: Path, environ: Mapping[str, str] | None):  # type: ignore[no-untyped-def]
    from ama.porcelain.asset import Asset

    return Asset.open(folder, environ)


def checkout_state(root: Path, entry: LockEntry,
                   environ: Mapping[str, str] | None = None) -> CheckoutState:
    """Return what the folder of ``entry`` holds compared with the lock."""
    from ama.porcelain.status import status

    folder = root / entry.path
    if not (folder / META_DIR / "HEAD").is_file():
        return CheckoutState(entry, MISSING)
    asset = _open_asset(folder, environ)
    if asset.root != folder.resolve() and asset.root != folder:
        return CheckoutState(entry, MISSING)
    head = asset.head
    holds = f"{head.name} {head.version}" if not head.is_temp else head.name
    same_asset = (head.class_name, head.asset) == (entry.class_name, entry.asset)
    if not same_asset or (not entry.is_temp and (head.version, head.manifest)
                          != (entry.version, entry.manifest)):
        return CheckoutState(entry, OTHER_VERSION, holds)
    result = status(asset, refresh=True)
    changes = tuple(sorted({*result.staged_new, *result.staged_modified,
                            *result.staged_deleted, *result.modified, *result.deleted,
                            *result.untracked}))
    if entry.is_temp:
        return CheckoutState(entry, TEMP, holds, changes)
    return CheckoutState(entry, MODIFIED if changes else IN_STEP, holds, changes)


def git_status(repo: GitRepo, environ: Mapping[str, str] | None = None) -> list[CheckoutState]:
    """Return the state of every checkout the work tree's ``ama.lock`` names."""
    return [checkout_state(repo.root, e, environ) for e in Lock.read(repo.root)]


# -- .gitignore -------------------------------------------------------------------------------


def ignore_pattern(path: str) -> str:
    """The ``.gitignore`` line that ignores exactly the folder ``path`` (from the root)."""
    escaped = "".join("\\" + c if c in "\\*?[" else c for c in path)
    if escaped.endswith(" "):
        escaped = escaped[:-1] + "\\ "
    return f"/{escaped}/"


def _ignore(root: Path, path: str) -> bool:
    """Add ``path`` to the root ``.gitignore``; return whether a line was added."""
    line = ignore_pattern(path)
    target = root / ".gitignore"
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    if line in text.splitlines():
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    target.write_text(text + line + "\n", encoding="utf-8")
    return True


def _unignore(root: Path, path: str) -> bool:
    """Remove the line :func:`_ignore` added for ``path``; return whether there was one."""
    target = root / ".gitignore"
    try:
        lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        return False
    line = ignore_pattern(path)
    kept = [x for x in lines if x.rstrip("\n") != line]
    if len(kept) == len(lines):
        return False
    target.write_text("".join(kept), encoding="utf-8")
    return True


# -- ama git add / remove ---------------------------------------------------------------------


@dataclass
class AddResult:
    entry: LockEntry
    cloned: bool
    ignored: bool  # a .gitignore line was added

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "cloned": self.cloned, "ignored": self.ignored}


def relative_path(repo: GitRepo, path: str | os.PathLike[str], cwd: Path | None = None) -> str:
    """``path`` (from ``cwd``) as a folder of the work tree, as the lock keeps it."""
    full = Path(os.path.abspath((cwd or Path.cwd()) / Path(path)))
    try:
        rel = full.relative_to(repo.root)
    except ValueError:
        try:
            rel = full.resolve().relative_to(repo.root.resolve())
        except ValueError:
            raise BadInput(f"{path} is outside the git work tree {repo.root}",
                           "name a folder inside the repository") from None
    return check_path(rel.as_posix())


def _environ_for(entry_remote: str, project: str,
                 environ: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env["AMA_REMOTE"] = entry_remote
    env["AMA_PROJECT"] = project
    return env


def add(repo: GitRepo, target: str, path: str | None = None, *,
        environ: Mapping[str, str] | None = None, progress: Progress | None = None,
        cwd: Path | None = None) -> AddResult:
    """Record an asset in ``ama.lock`` and ``.gitignore``.

    ``target`` is either ``NAME[/VERSION]`` (cloned into ``path``, default ``NAME`` from the
    root of the work tree) or an asset directory already inside the work tree, recorded at
    the version it holds (run it again after uploading from there). Where ``path`` holds
    the same asset already, it is switched to ``VERSION`` (default: the latest) and
    re-pinned. Raises BadInput, NotFound, BadLock and what clone and switch raise.
    """
    cwd = cwd or Path.cwd()
    lock = Lock.read(repo.root)
    candidate = Path(target) if Path(target).is_absolute() else cwd / target
    if path is None and (candidate / META_DIR / "HEAD").is_file():
        rel = relative_path(repo, candidate, cwd)
        asset = _open_asset(repo.root / rel, environ)
        from ama.porcelain.lockfile import entry_from_head

        entry = entry_from_head(rel, asset.head)
        lock = lock.with_entry(entry)
        cloned = False
    else:
        from ama.porcelain.clone import clone
        from ama.porcelain.versions import parse_name

        cls, name, version = parse_name(target)
        rel = relative_path(repo, path, cwd) if path else check_path(f"{cls}/{name}")
        current = lock.get(rel)
        folder = repo.root / rel
        if current is not None and (folder / META_DIR / "HEAD").is_file():
            asset = _open_asset(folder, environ)
            if not _holds(asset, cls, name):
                raise BadInput(f"{rel} already holds {current.name}, another asset (recorded "
                               f"in {LOCK_FILE})", "pick another --path, or drop it first "
                               f"with 'ama git remove {q(rel)}'")
            # The same asset at another version: move the checkout there and re-pin it.
            from ama.porcelain.lockfile import entry_from_head
            from ama.porcelain.switch import switch
            from ama.porcelain.versions import latest_version

            switch(asset, version or latest_version(asset), progress=progress)
            entry = entry_from_head(rel, asset.head)
            lock = lock.with_entry(entry)
            lock.write(repo.root)
            return AddResult(entry, False, _ignore(repo.root, entry.path))
        if folder.exists() and any(folder.iterdir()):
            raise BadInput(f"{rel} exists and is not empty", "choose another folder with --path")
        lock.with_entry(LockEntry(rel, cls, "1", "0.0.0", "0" * 64))  # refuse overlaps early
        asset = clone(f"{cls}/{name}", folder, version=version, environ=environ,
                      progress=progress)
        from ama.porcelain.lockfile import entry_from_head

        entry = entry_from_head(rel, asset.head)
        lock = lock.with_entry(entry)
        cloned = True
    lock.write(repo.root)
    ignored = _ignore(repo.root, entry.path)
    return AddResult(entry, cloned, ignored)


def _holds(asset: Asset, cls: str, name: str) -> bool:
    """Whether ``asset``'s directory holds the asset ``cls/name`` (an ordinal or an alias,
    which the remote resolves)."""
    head = asset.head
    if head.is_temp or head.class_name != cls:
        return False
    if name.isdigit():
        return int(name) == int(head.asset)
    from ama.porcelain.remotes import open_remote

    transport, remote = open_remote(asset.config, head.remote, head.project)
    return int(transport.asset(remote.project, cls, name)["ordinal"]) == int(head.asset)


@dataclass
class RemoveResult:
    entry: LockEntry
    deleted: bool

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "deleted": self.deleted}


def remove(repo: GitRepo, path: str, *, keep: bool = False, force: bool = False,
           environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> RemoveResult:
    """Drop the checkout at ``path`` from ``ama.lock`` and ``.gitignore``, and delete the
    folder unless ``keep``. A folder with changes that are not uploaded is refused unless
    ``force``. Raises NotFound (not in the lock) and :class:`OutOfStep`."""
    lock = Lock.read(repo.root)
    rel = relative_path(repo, path, cwd)
    entry = lock.get(rel)
    if entry is None:
        listed = ", ".join(e.path for e in lock) or "none"
        raise NotFound(f"{rel} is not a checkout named in {LOCK_FILE} (checkouts: {listed})",
                       "list them with 'ama git status'")
    deleted = False
    if not keep:
        state = checkout_state(repo.root, entry, environ)
        if state.state in (MODIFIED, TEMP) and (state.changes or state.state == TEMP) \
                and not force:
            raise OutOfStep(f"{rel} holds changes that are not uploaded; removing it would "
                            "lose them",
                            f"upload them first, keep the folder with 'ama git remove --keep "
                            f"{q(rel)}', or pass --force")
        folder = repo.root / rel
        if folder.exists():
            shutil.rmtree(folder)
            deleted = True
    lock.without(rel).write(repo.root)
    _unignore(repo.root, rel)
    return RemoveResult(entry, deleted)


# -- ama git sync -----------------------------------------------------------------------------


@dataclass
class SyncOutcome:
    """What sync did for one checkout: ``kept`` (already in step), ``cloned``,
    ``switched``, ``skipped`` (modified, not overwritten) or ``failed`` (with the error)."""

    entry: LockEntry
    action: str
    detail: str = ""
    error: AmaError | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.entry.to_json(), "action": self.action, "detail": self.detail,
                "error": None if self.error is None else self.error.message,
                "hint": None if self.error is None else self.error.hint}


@dataclass
class SyncResult:
    outcomes: list[SyncOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[SyncOutcome]:
        return [o for o in self.outcomes if o.action in ("failed", "skipped")]

    def to_json(self) -> dict[str, Any]:
        return {"checkouts": [o.to_json() for o in self.outcomes], "ok": not self.failed}


def sync(repo: GitRepo, *, force: bool = False, environ: Mapping[str, str] | None = None,
         progress: Progress | None = None, lock: Lock | None = None) -> SyncResult:
    """Bring every checkout ``ama.lock`` names to its locked version: clone what is missing,
    switch what holds another version (fetching metadata and only the files that differ).
    A checkout with changes that are not uploaded is left alone unless ``force``. Errors
    are collected per checkout, so one failure does not stop the others."""
    lock = Lock.read(repo.root) if lock is None else lock
    result = SyncResult()
    for entry in lock:
        try:
            result.outcomes.append(_sync_one(repo.root, entry, force, environ, progress))
        except AmaError as e:
            result.outcomes.append(SyncOutcome(entry, "failed", error=e))
    return result


def _sync_one(root: Path, entry: LockEntry, force: bool,
              environ: Mapping[str, str] | None, progress: Progress | None) -> SyncOutcome:
    state = checkout_state(root, entry, environ)
    folder = root / entry.path
    if state.state == IN_STEP or (state.state == TEMP and not force):
        return SyncOutcome(entry, "kept")
    if state.state == MISSING:
        if entry.is_temp:
            raise NotFound(f"{entry.path}: {entry.name} was never uploaded, so it exists only "
                           "on the machine it was made on",
                           "ask whoever added it to upload it and commit the new ama.lock")
        if folder.exists() and any(folder.iterdir()):
            raise OutOfStep(f"{entry.path} is not empty and is not an asset directory, so "
                            f"{entry.ref} cannot be cloned into it",
                            "move it away, then run 'ama git sync'")
        from ama.porcelain.clone import clone

        clone(entry.name, folder, version=entry.version,
              environ=_environ_for(entry.remote, entry.project, environ), progress=progress)
        _ignore(root, entry.path)
        return SyncOutcome(entry, "cloned", f"{entry.name} {entry.version}")
    if state.state == MODIFIED and not force:
        shown = ", ".join(state.changes[:5]) + (" …" if len(state.changes) > 5 else "")
        return SyncOutcome(entry, "skipped", f"changes not uploaded: {shown}")
    asset = _open_asset(folder, environ)
    if (asset.head.class_name, asset.head.asset) != (entry.class_name, entry.asset):
        raise OutOfStep(f"{entry.path} holds {state.holds}, not {entry.name}",
                        f"move it away (or 'ama git remove {q(entry.path)}'), then run "
                        "'ama git sync'")
    from ama.porcelain.switch import switch

    done = switch(asset, entry.version, force=force, progress=progress)
    return SyncOutcome(entry, "switched", f"{done.old} -> {done.new}")


# -- the hooks' checks ------------------------------------------------------------------------


@dataclass
class HookReport:
    """What a hook found: ``problems`` stop git (exit 1); ``notes`` are said and pass."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _upload_fix(entry: LockEntry) -> str:
    return (f"cd {q(entry.path)} && ama upload -m MESSAGE && cd - && "
            f"ama git add {q(entry.path)}")


def check_versions(entries: Iterable[tuple[LockEntry, str]],
                   environ: Mapping[str, str] | None = None) -> list[str]:
    """Check that each uploaded entry's version exists on its remote with the locked
    manifest; ``entries`` pairs each with where it was found (for the message). Returns the
    problems, one per entry; each asset is asked for once."""
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import open_remote
    from ama.porcelain.versions import asset_versions

    config = Config.open(environ)
    asked: dict[tuple[str, str, str, str], dict[str, str] | AmaError] = {}
    problems = []
    for entry, where in entries:
        if entry.is_temp:
            continue
        key = (entry.remote, entry.project, entry.class_name, entry.asset)
        if key not in asked:
            try:
                transport, info = open_remote(config, entry.remote, entry.project)
                _found, listed = asset_versions(transport, info.project, entry.class_name,
                                                entry.asset)
                asked[key] = {v["version"]: v["manifest"] for v in listed}
            except AmaError as e:
                asked[key] = e
        known = asked[key]
        place = f"remote {entry.remote} (project {entry.project})"
        if isinstance(known, AmaError):
            if isinstance(known, NotFound):
                problems.append(f"{where}: {entry.path} names {entry.name}, which is not on "
                                f"{place}: {known.message}. Upload it there, or record "
                                f"another asset with 'ama git add'")
            else:
                problems.append(f"{where}: cannot check {entry.name} {entry.version} on "
                                f"{place}: {known.message}"
                                + (f" ({known.hint})" if known.hint else ""))
        elif entry.version not in known:
            shown = ", ".join(known) or "none"
            problems.append(f"{where}: {entry.path} names {entry.name} {entry.version}, which "
                            f"is not on {place} (versions there: {shown}). Upload it: "
                            f"{_upload_fix(entry)}; or lock a version that exists: "
                            f"cd {q(entry.path)} && ama switch --version V && cd - && "
                            f"ama git add {q(entry.path)}")
        elif known[entry.version] != entry.manifest:
            problems.append(f"{where}: {entry.path} names {entry.name} {entry.version} with "
                            f"manifest {entry.manifest}, but {place} has "
                            f"{known[entry.version]} for it. Record what is checked out "
                            f"again: ama git add {q(entry.path)}")
    return problems


def _write_stamp(repo: GitRepo, lock_id: str, lock: Lock, started: float) -> None:
    """Remember a passed pre-commit check for the hook's shell fast path: the lock checked
    and each checkout folder (``+`` present, ``-`` absent), dated a second before the check
    began so that a change made during the check is seen next time."""
    out = repo.git("rev-parse", "--git-path", STAMP).stdout.decode().strip()
    path = Path(out) if os.path.isabs(out) else repo.root / out
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [lock_id]
    for entry in lock:
        present = (repo.root / entry.path / META_DIR).is_dir()
        lines.append(("+" if present else "-") + entry.path)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    temp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.utime(temp, (started - 1, started - 1))
    os.replace(temp, path)


def check_commit(repo: GitRepo, environ: Mapping[str, str] | None = None) -> HookReport:
    """``pre-commit``: the lock being committed (the index's) names only checkouts that
    hold their locked version unmodified, and, when the commit changes the lock, versions
    that exist on their remotes. Never-uploaded assets pass with a note (pre-push stops
    them)."""
    started = time.time()
    report = HookReport()
    data = repo.staged_file(LOCK_FILE)
    if data is None:
        return report
    try:
        lock = Lock.deserialize(data, f"{LOCK_FILE} (staged)")
    except BadLock as e:
        report.problems.append(f"{e.message} ({e.hint})")
        return report
    for entry in lock:
        state = checkout_state(repo.root, entry, environ)
        if state.state == MODIFIED:
            shown = ", ".join(state.changes[:5]) + (" …" if len(state.changes) > 5 else "")
            report.problems.append(
                f"{entry.path} ({entry.name} {entry.version}) has changes that are not "
                f"uploaded: {shown}. Upload them and record the new version: "
                f"{_upload_fix(entry)}; or throw them away: cd {q(entry.path)} && "
                "ama discard --staged --all")
        elif state.state == OTHER_VERSION:
            report.problems.append(
                f"{entry.path} holds {state.holds}, but {LOCK_FILE} names {entry.name} "
                f"{entry.version}. Record what it holds: ama git add {q(entry.path)}; or go "
                "back to the locked version: ama git sync")
        elif state.state == MISSING:
            report.notes.append(f"{entry.path} ({entry.ref}) is not checked out here; "
                                "'ama git sync' checks it out")
        elif state.state == TEMP:
            report.notes.append(f"{entry.path} holds {entry.name}, which was never uploaded; "
                                f"a push will need it uploaded: {_upload_fix(entry)}")
    lock_id = repo.staged_blob_id(LOCK_FILE) or ""
    head = repo.git("rev-parse", "-q", "--verify", f"HEAD:{LOCK_FILE}", check=False)
    if head.stdout.decode().strip() != lock_id:
        report.problems.extend(check_versions(((e, LOCK_FILE) for e in lock), environ))
    if report.ok:
        _write_stamp(repo, lock_id, lock, started)
    return report


def check_push(repo: GitRepo, remote: str, stdin: str,
               environ: Mapping[str, str] | None = None) -> HookReport:
    """``pre-push``: every version named by the ``ama.lock`` of each pushed commit exists on
    its remote; a never-uploaded asset stops the push with the commands that fix it."""
    report = HookReport()
    pushed = PushedRef.parse(stdin)
    seen_blobs: set[str] = set()
    entries: dict[tuple[Any, ...], tuple[LockEntry, str]] = {}
    for sha in repo.pushed_commits(pushed, remote):
        found = repo.file_at(sha, LOCK_FILE)
        if found is None or found[0] in seen_blobs:
            continue
        blob, data = found
        seen_blobs.add(blob)
        where = f"commit {sha[:12]}"
        try:
            lock = Lock.deserialize(data, f"{LOCK_FILE} of {where}")
        except BadLock as e:
            report.problems.append(f"{e.message} ({e.hint})")
            continue
        for entry in lock:
            entries.setdefault((entry.path, entry.name, entry.version, entry.manifest,
                                entry.remote, entry.project), (entry, where))
    for entry, where in entries.values():
        if entry.is_temp:
            report.problems.append(
                f"{where}: {entry.path} is the asset {entry.name}, which was never uploaded, "
                f"so nobody else can check it out. Upload it and record it: "
                f"{_upload_fix(entry)} && git commit -m 'Lock {entry.path}' {LOCK_FILE} "
                "(if an earlier commit being pushed names it, fold the fix into it with "
                "'git rebase -i')")
    report.problems.extend(check_versions(entries.values(), environ))
    return report


def after_checkout(repo: GitRepo, environ: Mapping[str, str] | None = None,
                   progress: Progress | None = None) -> tuple[SyncResult, HookReport]:
    """``post-checkout`` and ``post-merge``: :func:`sync`, reported for a hook. Git's own
    checkout is never undone; what could not be done is said with how to finish it."""
    report = HookReport()
    try:
        result = sync(repo, environ=environ, progress=progress)
    except AmaError as e:
        report.problems.append(f"{e.message}. Git's checkout is complete; fix that, then "
                               "finish with: ama git sync")
        return SyncResult(), report
    for outcome in result.outcomes:
        if outcome.action in ("cloned", "switched"):
            report.notes.append(f"{outcome.entry.path}: {outcome.entry.name} {outcome.detail}")
        elif outcome.action == "skipped":
            report.problems.append(
                f"{outcome.entry.path} was left at the version it holds: {outcome.detail}. "
                f"Upload or discard them, then finish with: ama git sync "
                "(or 'ama git sync --force' to overwrite them)")
        elif outcome.action == "failed" and outcome.error is not None:
            hint = f" ({outcome.error.hint})" if outcome.error.hint else ""
            report.problems.append(
                f"{outcome.entry.path}: could not bring it to {outcome.entry.ref}: "
                f"{outcome.error.message}{hint}. Git's checkout is complete; finish with: "
                "ama git sync")
    return result, report
