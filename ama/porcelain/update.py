"""``ama update PATH…|--all``: re-stage tracked files that changed (and unstage deleted ones)."""

from __future__ import annotations

import os

from ama.plumbing.crash import crash_point
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.index import IndexEntry
from ama.porcelain.add import Progress, Staged, pathspecs, store_files
from ama.porcelain.asset import Asset, locked_index, scan, under_any


def update(asset: Asset, paths: list[str] | None = None, cwd: str | os.PathLike[str] | None = None,
           progress: Progress | None = None) -> Staged:
    """Re-stage the staged files below ``paths`` (None: all of them) whose content changed,
    and unstage those that were deleted. Files not staged yet are left alone (``ama add``
    stages them). A path with nothing staged below it raises :class:`NotFound` before
    anything changes. Files are stored as ``ama add`` stores them: with the ``hardlink``
    link strategy a plain file becomes its store object by a hard link. Returns what was
    staged.
    """
    if paths is not None and not paths:
        raise BadInput("name the files to update, or pass --all")
    prefixes = [""] if paths is None else pathspecs(asset, paths, cwd)
    with locked_index(asset) as index:
        if paths is not None:
            for name, prefix in zip(paths, prefixes, strict=True):
                if not any(under_any(p, [prefix]) for p in index.entries):
                    if os.path.lexists(asset.root / prefix):
                        raise NotFound(f"{name}: it is not staged, so there is nothing to "
                                       "update", f"stage it with 'ama add {name}'")
                    raise NotFound(f"{name}: no such file, staged or not",
                                   "check the path; 'ama status' lists the asset's files")
        work = scan(asset, index, prefixes)
        result = Staged()
        todo = [(entry.path, st, entry) for entry, st in work.stale]
        for path, oid, st, old in store_files(asset, todo, progress):
            index.add(IndexEntry.from_stat(path, oid, st))
            assert old is not None
            if old.id != oid or old.mode != st.st_mode:
                result.modified.append(path)
                result.bytes += st.st_size
        for entry in work.missing:
            index.remove(entry.path)
            result.removed.append(entry.path)
        if work.stale or work.missing:
            crash_point("update.before-index")
            index.write()
    return result.sort()
