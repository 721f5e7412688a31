"""``ama switch --version V``: make an asset directory hold another version of its asset.

The work is proportional to the files that differ between the two versions: only those
are fetched, placed or deleted. Files changed here and not uploaded are never overwritten
without ``force``. A switch that is killed half-way completes when run again: the target is
written to ``.ama/switch`` first, then the files are moved, then HEAD, and a switch finding
``.ama/switch`` finishes that one (the files it already placed match and are skipped).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ama.plumbing.checkout import checkout
from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.index import path_key
from ama.plumbing.objects import VERSION_RE
from ama.plumbing.odb import MissingObject
from ama.porcelain.asset import Asset, Head, locked_index, scan
from ama.porcelain.download import fetch_metadata, receive, version_files
from ama.porcelain.versions import asset_versions, known, record

Progress = Callable[[int, int], None]
SWITCH_FILE = "switch"


class LocalChanges(AmaError):
    """Files changed here and not uploaded, which a switch would overwrite."""


@dataclass
class SwitchResult:
    """The version switched from and to, and the files written and deleted."""

    name: str
    old: str
    new: str
    manifest: str
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    received: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "from": self.old, "to": self.new, "manifest": self.manifest,
                "written": self.written, "deleted": self.deleted, "received": self.received}


def switch(asset: Asset, version: str, *, force: bool = False,
           progress: Progress | None = None) -> SwitchResult:
    """Make ``asset``'s directory hold ``version`` (see the module docstring).

    Raises BadInput (a malformed version), NotFound (an unknown version, a temp asset),
    :class:`LocalChanges` (without ``force``), and the transport's errors.
    """
    from ama.porcelain.remotes import open_remote

    head = asset.head
    if not VERSION_RE.match(version):
        raise BadInput(f"invalid version {version!r}: use MAJOR.MINOR.PATCH, such as 0.0.1",
                       "list versions with 'ama versions'")
    if head.is_temp:
        raise NotFound(f"{head.name} was never uploaded: it has no versions to switch to",
                       "upload it with 'ama upload -m MESSAGE'")
    home = asset.store.home
    pending = _pending(asset)
    transport, remote = open_remote(asset.config, head.remote, head.project)
    versions = known(home, head.remote, head.project, head.class_name, head.asset)
    if version not in versions:
        found, listed = asset_versions(transport, remote.project, head.class_name, head.asset)
        record(home, remote.name, remote.project, head.class_name, found["ordinal"], listed)
        versions = {v["version"]: v["manifest"] for v in listed}
    if version not in versions:
        shown = ", ".join(versions) or "none"
        raise NotFound(f"{head.name} has no version {version} (versions: {shown})",
                       "list versions with 'ama versions'")
    target = versions[version]
    parallelism = int(asset.config.get("transfer.parallelism"))
    result = SwitchResult(head.name, head.version, version, target)
    restore: list[str] = []
    if pending is not None:
        _clear_stale_lock(asset)
    # Bring the trees and the bytes first, without holding the index: only the files that
    # differ, all made durable by one sync.
    with asset.store.objects.batch():
        new_files = version_files(asset.store.objects, target, transport, remote.project,
                                  parallelism)
        # What differs from the version here: the files of HEAD's version, which the check
        # for local changes needs below anyway (so the index is read once, under its lock);
        # when the trees of that version are not in the store, the index says what is here.
        committed: dict[str, tuple[str, str]] | None
        try:
            committed = asset.committed_ids()
            here = {p: c[1] for p, c in committed.items()}
        except MissingObject:
            committed = None
            here = {p: e.id for p, e in asset.index().entries.items()}
        brought: set[str] = set()
        result.received = receive(
            transport, remote.project, asset.store.objects,
            [(e.id, e.size) for p, e in new_files.items() if here.get(p) != e.id],
            parallelism, progress, brought=brought)
    with locked_index(asset) as index:
        if pending is None:
            if target == head.manifest:
                return result
            try:
                changed = _local_changes(asset, index, head, committed)
            except MissingObject:  # the trees of the version here: fetch them, once
                if head.manifest is None:
                    raise
                fetch_metadata(transport, remote.project, asset.store.objects,
                               [head.manifest], parallelism=parallelism)
                changed = _local_changes(asset, index, head)
            if changed and not force:
                shown = "\n".join(f"  {p}" for p in changed[:20])
                more = f"\n  … and {len(changed) - 20} more" if len(changed) > 20 else ""
                raise LocalChanges(
                    f"{len(changed)} file(s) changed here are not uploaded and would be "
                    f"lost by switching to {version}:\n{shown}{more}",
                    "upload them ('ama upload -m MESSAGE'), discard them ('ama discard "
                    "--staged --all'), or pass --force to overwrite them")
            restore = [p for p in changed if p in new_files]  # with force: back to target
            _write_pending(asset, {"version": version, "manifest": target,
                                   "from": head.manifest})
        # Which paths differ: compare the index (what is here) with the target.
        old = index.entries
        differ = [p for p, e in new_files.items()
                  if (cur := old.get(p)) is None or cur.id != e.id
                  or cur.executable != e.executable]
        gone = [p for p in old if p not in new_files]
        differ = list(dict.fromkeys(differ + restore))
        result.received += receive(transport, remote.project, asset.store.objects,
                                   [(new_files[p].id, new_files[p].size) for p in differ],
                                   parallelism, brought=brought)
        for path in differ:
            index.add(new_files[path])
        for path in gone:
            index.remove(path)
            full = asset.root / path
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                if not full.is_dir() or full.is_symlink():
                    os.unlink(full)
                    result.deleted.append(path)
            _prune_empty(asset, full.parent)
        result.written = checkout(asset.store.objects, index, asset.root,
                                  sorted(differ, key=path_key), asset.link_strategy(),
                                  force=True, verified=brought)
        asset.set_head(Head(class_name=head.class_name, asset=head.asset, version=version,
                            manifest=target, remote=head.remote, project=head.project))
        from ama.porcelain.inputs import reset as reset_inputs

        reset_inputs(asset)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(asset.dir.meta / SWITCH_FILE)
    result.deleted.sort(key=path_key)
    return result


def _local_changes(asset: Asset, index: Any, head: Head,
                   committed: dict[str, tuple[str, str]] | None = None) -> list[str]:
    """Paths whose content here differs from the version HEAD names (``committed``, its
    files, when the caller has them): staged changes, and staged files changed or deleted
    since."""
    if committed is None:
        committed = asset.committed_ids()
    changed = {p for p, e in index.entries.items()
               if (c := committed.get(p)) is None or c[1] != e.id}
    changed.update(p for p in committed if p not in index.entries)
    work = scan(asset, index)
    from ama.plumbing.hashing import hash_file

    for entry, st in work.stale:
        if hash_file(asset.root / entry.path, st.st_size) != entry.id:
            changed.add(entry.path)
    changed.update(e.path for e in work.missing)
    return sorted(changed, key=path_key)


def _clear_stale_lock(asset: Asset) -> None:
    """Remove ``.ama/index.lock`` when the process that left it is dead: a switch killed
    half-way holds it, and running the switch again must complete that switch."""
    lock = asset.dir.meta / "index.lock"
    try:
        text = lock.read_text().strip()
    except FileNotFoundError:
        return
    if text.isdigit():
        try:
            os.kill(int(text), 0)
            return
        except ProcessLookupError:
            pass
        except PermissionError:
            return
    with contextlib.suppress(FileNotFoundError):
        lock.unlink()


def _prune_empty(asset: Asset, folder: Any) -> None:
    root = asset.root
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _pending(asset: Asset) -> dict[str, Any] | None:
    try:
        value = json.loads((asset.dir.meta / SWITCH_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_pending(asset: Asset, value: dict[str, Any]) -> None:
    write_atomic(asset.dir.meta / SWITCH_FILE, (json.dumps(value) + "\n").encode("utf-8"))
