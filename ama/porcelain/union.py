"""``ama union``: stage, in an asset directory, the files of another version beside its own.

The result is this directory's staged files plus every file of the other version (of the
same asset, or of another asset of the same class), ready for ``ama upload``; another
asset's version is also staged as an input labelled ``union``, for the lineage. It works on
object ids: the other version's files enter the index by id, and only objects the asset
store lacks are fetched from the remote; no file is copied into the store again.

A path that both sides hold with other content (or that is a file on one side and a folder
on the other) is a conflict. Without ``side`` nothing changes and :class:`UnionConflicts`
lists them; ``side="ours"`` keeps this directory's file at every conflict, ``"theirs"``
takes the other version's. Files the union writes or replaces must not hold local changes
(and a new file must not find an untracked one in its way), so no edit is ever lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ama.plumbing.checkout import checkout
from ama.plumbing.errors import FAILED, AmaError, BadInput, path_list
from ama.plumbing.index import IndexEntry, path_key
from ama.plumbing.objects import VERSION_RE, Input
from ama.porcelain.asset import Asset, locked_index
from ama.porcelain.info import AssetRef, connect_asset, parse_name, resolve_version

SIDES = ("ours", "theirs")


@dataclass(frozen=True)
class UnionConflict:
    """A path the two sides hold differently: each side's ``type:id`` (``folder`` when
    that side has files below the path instead, None when it has nothing there)."""

    path: str
    ours: str
    theirs: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "ours": self.ours, "theirs": self.theirs}


class UnionConflicts(AmaError):
    """Paths both sides hold differently, with no side chosen: nothing was changed."""

    exit_code = FAILED

    def __init__(self, other: str, conflicts: list[UnionConflict]) -> None:
        paths = [c.path for c in conflicts]
        super().__init__(
            f"{len(conflicts)} path(s) differ between this directory and {other}; nothing "
            f"was changed:\n{path_list(paths)}",
            f"run 'ama union {other} --ours' to keep these files as they are here (then edit "
            f"any of them and 'ama update' it to combine both), or '--theirs' to take "
            f"{other}'s")
        self.conflicts = conflicts


class LocalChanges(AmaError):
    """Files the union would write hold changes not staged, or untracked files are in the
    way."""


@dataclass
class UnionResult:
    """What a union staged: the other version, the files it added, replaced (``theirs``)
    or removed (``theirs`` where a folder replaces a file or the other way round), the
    conflicts it resolved, and how many objects came from the remote."""

    other: str
    manifest: str
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[UnionConflict] = field(default_factory=list)
    side: str | None = None
    received: int = 0
    input: bool = False  # whether OTHER was staged as an input labelled "union"

    def to_json(self) -> dict[str, Any]:
        return {"other": self.other, "manifest": self.manifest, "added": self.added,
                "replaced": self.replaced, "removed": self.removed,
                "conflicts": [c.to_json() for c in self.conflicts], "side": self.side,
                "received": self.received, "input": self.input}


def other_ref(asset: Asset, other: str) -> AssetRef:
    """The version ``other`` names: a VERSION of this directory's asset, or CLASS/ASSET
    [/VERSION] (its latest version without one) of the same class. Raises BadInput."""
    head = asset.head
    if VERSION_RE.match(other):
        if head.is_temp:
            raise BadInput(f"{head.name} was never uploaded: it has no version {other}",
                           "name a version of another asset, such as "
                           f"{head.class_name}/1/0.0.0")
        return AssetRef(head.class_name, head.asset, other)
    ref = parse_name(other)
    if ref.cls != head.class_name:
        raise BadInput(f"{other} is of class {ref.cls}, and this directory holds an asset of "
                       f"class {head.class_name}: a union joins versions of one class",
                       f"name a version of the class {head.class_name}")
    return ref


def _entry_label(entry: IndexEntry) -> str:
    return f"{entry.type}:{entry.id}"


def _conflicts(ours: dict[str, IndexEntry], theirs: dict[str, IndexEntry]
               ) -> list[UnionConflict]:
    """Every path the two sides hold differently, file against file or file against
    folder, sorted."""
    def folders(paths: dict[str, IndexEntry]) -> set[str]:
        found = set()
        for p in paths:
            while "/" in p:
                p = p.rpartition("/")[0]
                found.add(p)
        return found

    our_folders, their_folders = folders(ours), folders(theirs)
    found: list[UnionConflict] = []
    for path, mine in ours.items():
        other = theirs.get(path)
        if other is not None and (other.id != mine.id or other.type != mine.type):
            found.append(UnionConflict(path, _entry_label(mine), _entry_label(other)))
        elif path in their_folders:
            found.append(UnionConflict(path, _entry_label(mine), "folder"))
    for path, other in theirs.items():
        if path in our_folders:
            found.append(UnionConflict(path, "folder", _entry_label(other)))
    return sorted(found, key=lambda c: path_key(c.path))


def _in_the_way(root: Path, path: str, ours: dict[str, IndexEntry], untracked: set[str]
                ) -> bool:
    """Whether something not staged here stands where the new file ``path`` goes: a file,
    link or folder at its path (other than a folder of staged files only, which the union
    empties first), or a file or link where one of its folders goes."""
    target = root / path
    if os.path.lexists(target):
        if target.is_symlink() or not target.is_dir():
            return True
        below = path + "/"
        return (any(u.startswith(below) for u in untracked)
                or not any(o.startswith(below) for o in ours))
    parts = path.split("/")
    for n in range(1, len(parts)):
        folder = "/".join(parts[:n])
        where = root / folder
        if folder not in ours and (where.is_symlink() or (where.exists() and not where.is_dir())):
            return True
    return False


def _stage_input(asset: Asset, item: Input) -> bool:
    """Stage ``item`` as an input of the next upload (the lineage of a union with another
    asset) unless that version is staged already; return whether it was added."""
    from ama.porcelain.inputs import staged, write_staged

    current = staged(asset)
    if any(i.manifest == item.manifest for i in current):
        return False
    write_staged(asset, [*current, item])
    return True


def _below(path: str, paths: dict[str, IndexEntry]) -> list[str]:
    """``path`` itself and every path below it as a folder, of ``paths``."""
    return [p for p in paths if p == path or p.startswith(path + "/")]


def union(asset: Asset, other: str, side: str | None = None) -> UnionResult:
    """Stage in ``asset``'s directory the union of its staged files and the files of the
    version ``other`` names (see the module docstring) and place the new files in the work
    tree; ``side`` (``ours`` or ``theirs``) resolves the conflicts.

    Raises BadInput, NotFound (an unknown or deleted asset or version),
    :class:`UnionConflicts` (conflicts, no side chosen), :class:`LocalChanges`, and the
    transport's errors.
    """
    from ama.porcelain.download import receive, version_files
    from ama.porcelain.status import status

    if side is not None and side not in SIDES:
        raise BadInput(f"invalid side {side!r}: use ours or theirs")
    ref = other_ref(asset, other)
    remote = connect_asset(asset)
    record = resolve_version(remote, ref)
    name = f"{record['name']}/{record['version']}"
    parallelism = int(asset.config.get("transfer.parallelism"))
    odb = asset.store.objects
    theirs = version_files(odb, record["manifest"], remote.transport, remote.project,
                           parallelism)
    result = UnionResult(name, record["manifest"], side=side)
    state = status(asset)
    changed = set(state.modified) | set(state.deleted)
    untracked = set(state.untracked)
    with locked_index(asset) as index:
        ours = dict(index.entries)
        conflicts = _conflicts(ours, theirs)
        if conflicts and side is None:
            raise UnionConflicts(name, conflicts)
        result.conflicts = conflicts
        take: dict[str, IndexEntry] = {p: e for p, e in theirs.items() if p not in ours}
        drop: list[str] = []
        for c in conflicts:
            if side == "ours":
                for p in _below(c.path, theirs):
                    take.pop(p, None)
            else:
                drop += [p for p in _below(c.path, ours) if p not in theirs
                         or theirs[p].id != ours[p].id or theirs[p].type != ours[p].type]
                take.update({p: theirs[p] for p in _below(c.path, theirs)})
        drop = sorted(set(drop) - set(take), key=path_key)
        touched = [p for p in [*take, *drop] if p in changed]
        blocked = [p for p in take if p not in ours
                   and _in_the_way(asset.root, p, ours, untracked)]
        if touched or blocked:
            raise LocalChanges(
                f"{len(touched) + len(blocked)} file(s) here would be overwritten by the union "
                f"with {name}:\n{path_list(sorted(touched + blocked, key=path_key))}",
                "stage them ('ama update' or 'ama add'), move them away, or discard them "
                "('ama discard'), then run the union again")
        with odb.batch():
            result.received = receive(remote.transport, remote.project, odb,
                                      [(e.id, e.size) for e in take.values()], parallelism)
        for path in drop:
            index.remove(path)
            (asset.root / path).unlink(missing_ok=True)
        for entry in take.values():
            index.add(entry)
        index.write()
        # Every path written was either absent, a file staged unchanged here, or removed
        # above: nothing a user changed is overwritten.
        checkout(odb, index, asset.root, list(take), asset.link_strategy(), force=True)
    if record["name"] != f"{asset.head.class_name}/{asset.head.asset}":
        result.input = _stage_input(asset, Input(record["manifest"], name, "union"))
    result.added = sorted((p for p in take if p not in ours), key=path_key)
    result.replaced = sorted((p for p in take if p in ours), key=path_key)
    result.removed = [p for p in drop if p not in take]
    return result
