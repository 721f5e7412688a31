"""Checking out staged files: writing the index's blobs from the store into the work tree."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from ama.plumbing.errors import AmaError
from ama.plumbing.hashing import hash_file
from ama.plumbing.index import Index, IndexEntry
from ama.plumbing.link import place
from ama.plumbing.odb import CorruptObject, FileObjectDatabase


class WouldOverwrite(AmaError):
    """Files in the way that hold something else; nothing is written without ``force``."""


def checkout(odb: FileObjectDatabase, index: Index, root: Path, paths: Iterable[str],
             strategy: str = "auto", force: bool = False) -> list[str]:
    """Write the staged files ``paths`` into ``root`` from ``odb``; return the paths written.

    A file already holding the staged bytes is left alone. A file with other bytes (or a
    folder in the way) is refused, listing every one, unless ``force``. Each object is
    re-hashed as it is placed, so a corrupt store object never reaches the work tree.
    The index is updated with the new files' stat and written.
    """
    entries = [index.entries[p] for p in paths]
    todo: list[IndexEntry] = []
    blocked: list[str] = []
    for entry in entries:
        full = root / entry.path
        try:
            st = os.stat(full)
        except (FileNotFoundError, NotADirectoryError):
            todo.append(entry)
            continue
        if entry.matches(st) and not index.is_racy(entry):
            continue
        if (os.path.isfile(full) and st.st_size == entry.size
                and hash_file(full, st.st_size) == entry.id
                and bool(st.st_mode & 0o100) == entry.executable):
            index.add(IndexEntry.from_stat(entry.path, entry.id, st))
            continue
        todo.append(entry)
        blocked.append(entry.path)
    if blocked and not force:
        listed = "\n".join(f"  {p}" for p in blocked[:20])
        more = f"\n  … and {len(blocked) - 20} more" if len(blocked) > 20 else ""
        raise WouldOverwrite(
            f"{len(blocked)} file(s) in the work tree differ from the index and would be "
            f"overwritten:\n{listed}{more}",
            "stage or move them first, or pass -f to overwrite them",
        )
    written = []
    for entry in todo:
        dest = root / entry.path
        if force:
            _clear_way(root, dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        src = odb.path(entry.id)
        if not src.exists():
            from ama.plumbing.odb import MissingObject

            raise MissingObject(entry.id, f"the asset store (needed for {entry.path})")
        used = place(str(src), str(dest), strategy, entry.executable)
        check = src if used in ("hardlink", "symlink") else dest
        actual = hash_file(check, entry.size)
        if actual != entry.id:
            os.unlink(dest)
            raise CorruptObject(entry.id, str(src), actual)
        index.add(IndexEntry.from_stat(entry.path, entry.id, os.stat(dest)))
        written.append(entry.path)
    index.write()
    return written


def _clear_way(root: Path, dest: Path) -> None:
    """Remove what stands where ``dest`` must go: a folder at it, or a file at a parent."""
    import shutil

    if dest.is_dir() and not dest.is_symlink():
        shutil.rmtree(dest)
    parent = dest.parent
    while parent != root:
        if parent.exists() and not parent.is_dir():
            parent.unlink()
            break
        parent = parent.parent
