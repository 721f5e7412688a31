"""``ama remove PATH…``: unstage files and delete them from the asset directory."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field

from ama.plumbing.checkout import in_real_folders
from ama.plumbing.errors import AmaError, NotFound
from ama.plumbing.hashing import hash_bytes, hash_file
from ama.plumbing.index import path_key
from ama.porcelain.add import pathspecs
from ama.porcelain.asset import Asset, locked_index, under_any


class UnsavedChanges(AmaError):
    """Files whose changes exist nowhere else; nothing is removed without ``force``."""


@dataclass
class Removed:
    """The paths unstaged, and which of them were deleted from the work tree."""

    unstaged: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        return {"unstaged": self.unstaged, "deleted": self.deleted}


def remove(asset: Asset, paths: list[str], cwd: str | os.PathLike[str] | None = None,
           keep: bool = False, force: bool = False) -> Removed:
    """Unstage the staged files below ``paths`` and, unless ``keep``, delete them from the
    work tree (and folders left empty). The next upload records them as gone.

    A path with nothing staged below it raises :class:`NotFound`; a file whose work-tree
    bytes differ from what is staged raises :class:`UnsavedChanges` unless ``force`` or
    ``keep``. Nothing changes when either is raised.
    """
    prefixes = pathspecs(asset, paths, cwd)
    with locked_index(asset) as index:
        chosen: list[str] = []
        for name, prefix in zip(paths, prefixes, strict=True):
            found = [p for p in index.entries if under_any(p, [prefix])]
            if not found:
                raise NotFound(f"{name} is not staged, so there is nothing to remove",
                               "list staged files with 'ama status' or 'ama ls-files'")
            chosen.extend(found)
        chosen = sorted(set(chosen), key=path_key)
        if not keep and not force:
            dirty = [p for p in chosen if _differs(asset, index.entries[p])]
            if dirty:
                listed = "\n".join(f"  {p}" for p in dirty[:20])
                raise UnsavedChanges(
                    f"{len(dirty)} file(s) have changes that are not staged and would be "
                    f"lost:\n{listed}",
                    "stage them with 'ama update', keep the files with --keep, or pass -f")
        result = Removed()
        for path in chosen:
            index.remove(path)
            result.unstaged.append(path)
        index.write()
        if not keep:
            folders: set[str] = set()
            for path in chosen:
                if not in_real_folders(asset.root, path):
                    continue  # through a symbolic link: not a file of this work tree
                with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                    os.unlink(asset.root / path)
                    result.deleted.append(path)
                folders.update(_parents(path))
            for folder in sorted(folders, key=len, reverse=True):
                with contextlib.suppress(OSError):
                    os.rmdir(asset.root / folder)
    return result


def _differs(asset: Asset, entry) -> bool:  # type: ignore[no-untyped-def]
    full = asset.root / entry.path
    if entry.is_link:  # its target is its content
        try:
            return hash_bytes(os.fsencode(os.readlink(full))) != entry.id
        except (FileNotFoundError, NotADirectoryError):
            return False
        except OSError:  # not a link any more
            return True
    try:
        st = os.stat(full)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if not os.path.isfile(full):
        return True
    if entry.matches(st):
        return False
    return st.st_size != entry.size or hash_file(full, st.st_size) != entry.id


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
