"""``ama status``: what is staged, changed, deleted and new in an asset directory.

Three comparisons, as git's: the index against the version HEAD names (staged: new,
modified, deleted), the work tree against the index (modified, deleted), and files the
index does not hold (untracked). Only files whose stat changed since they were staged are
re-hashed; those that turn out unchanged get their stat refreshed in the index, so the next
status does not hash them again.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Any

from ama.plumbing.durable import unless_unwritable
from ama.plumbing.index import Index, IndexEntry, change_of, path_key
from ama.porcelain.asset import Asset, Head, IndexLocked, WorkScan, locked_index, scan


@dataclass
class Status:
    """The state of an asset directory; every list is sorted by path."""

    head: Head
    staged_new: list[str] = field(default_factory=list)
    staged_modified: list[str] = field(default_factory=list)
    staged_deleted: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    untracked: list[str] = field(default_factory=list)
    unsupported: list[tuple[str, str]] = field(default_factory=list)
    tracked: int = 0

    @property
    def has_staged(self) -> bool:
        return bool(self.staged_new or self.staged_modified or self.staged_deleted)

    @property
    def has_unstaged(self) -> bool:
        return bool(self.modified or self.deleted)

    @property
    def clean(self) -> bool:
        """Nothing staged, changed, deleted or new."""
        return not (self.has_staged or self.has_unstaged or self.untracked or self.unsupported)

    @property
    def uploaded(self) -> bool:
        """The work tree holds exactly the version HEAD names, which was uploaded."""
        return (self.head.manifest is not None and not self.has_staged
                and not self.has_unstaged)

    def to_json(self) -> dict[str, Any]:
        return {
            "asset": self.head.name,
            "class": self.head.class_name,
            "version": self.head.version,
            "manifest": self.head.manifest,
            "staged": {"new": self.staged_new, "modified": self.staged_modified,
                       "deleted": self.staged_deleted},
            "modified": self.modified,
            "deleted": self.deleted,
            "untracked": self.untracked,
            "unsupported": [{"path": p, "problem": why} for p, why in self.unsupported],
            "tracked": self.tracked,
            "uploaded": self.uploaded,
            "clean": self.clean,
        }


def status(asset: Asset, refresh: bool = True) -> Status:
    """Return the :class:`Status` of ``asset``.

    With ``refresh`` the stat of files found unchanged after re-hashing is saved in the
    index (skipped quietly when another command holds the index, or the index cannot be
    written: a full disk, a read-only checkout; status is a look, the save a shortcut). Raises
    :class:`~ama.plumbing.odb.MissingObject` when the version HEAD names is not in the store.
    """
    index = asset.index()
    result = Status(asset.head, tracked=len(index))
    if index.tree is None or index.tree != asset.committed_tree():
        staged(asset, index, result)
    work = scan(asset, index)
    touched = compare(asset, work, result)
    result.untracked = [p for p, _st in work.new]
    result.unsupported = sorted(work.problems)
    for name in ("staged_new", "staged_modified", "staged_deleted", "modified", "deleted",
                 "untracked"):
        getattr(result, name).sort(key=path_key)
    if refresh and touched:
        with contextlib.suppress(IndexLocked), unless_unwritable(), \
                locked_index(asset) as fresh:
            for entry in touched:
                current = fresh.get(entry.path)
                if current is not None and current.id == entry.id:
                    fresh.add(entry)
            fresh.write()
    return result


def staged(asset: Asset, index: Index, result: Status) -> None:
    """Sort the differences between the index and the version HEAD names into
    ``result.staged_*`` (unsorted)."""
    committed = asset.committed_ids()
    entries = index.entries
    proxies = index.staged_proxies()  # in a tree: their descriptors, not their bytes
    for path, entry in entries.items():
        old = committed.get(path)
        if old is None:
            result.staged_new.append(path)
        elif path in proxies:
            if old != ("proxy", proxies[path][1]):
                result.staged_modified.append(path)
        elif old[1] != entry.id or old[0] != entry.type:
            result.staged_modified.append(path)
    if len(committed) + len(result.staged_new) != len(entries):
        result.staged_deleted = [p for p in committed if p not in entries]


def compare(asset: Asset, work: WorkScan, result: Status) -> list[IndexEntry]:
    """Sort the stale and missing files of ``work`` into ``result.modified`` and
    ``result.deleted``, re-hashing only what the stat cannot decide; return the entries of
    files that turned out unchanged, with their new stat."""
    touched: list[IndexEntry] = []
    root = os.fspath(asset.root)
    for entry, st in work.stale:
        change = change_of(entry, st, root)
        if change.state == "touched":
            touched.append(change.entry)
        else:
            result.modified.append(entry.path)
    result.deleted.extend(e.path for e in work.missing)
    return touched

