"""``ama init CLASS``: make the current directory an asset directory of a new temp asset."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path

from ama.plumbing.errors import AmaError, BadInput
from ama.plumbing.store import home_dir
from ama.plumbing.worktree import META_DIR
from ama.porcelain.asset import TEMP_PREFIX, Head, register
from ama.porcelain.classes import LocalClasses
from ama.porcelain.config import Config


class AlreadyInitialised(AmaError):
    """The directory is an asset directory already."""


class NestedAssetDir(BadInput):
    """An asset directory inside another, or around another."""


def init(directory: str | os.PathLike[str], class_name: str,
         environ: Mapping[str, str] | None = None,
         token_hex: Callable[[int], str] = secrets.token_hex) -> Head:
    """Create ``.ama/`` in ``directory`` holding a temp asset of ``class_name``; return HEAD.

    The directory is registered in ``$AMA_HOME/worktrees``. Raises
    :class:`~ama.porcelain.classes.UnknownClass`, :class:`AlreadyInitialised` or
    :class:`NestedAssetDir`, and then changes nothing.
    """
    root = Path(directory).absolute()
    if not root.is_dir():
        raise BadInput(f"{root} is not a directory")
    if (root / META_DIR).exists():
        raise AlreadyInitialised(f"{root} is already an asset directory",
                                 "see what it holds with 'ama status'")
    for parent in root.parents:
        if (parent / META_DIR).is_dir():
            raise NestedAssetDir(
                f"{root} is inside the asset directory {parent}: asset directories cannot nest",
                "run 'ama init' in a folder outside it",
            )
    inner = _find_inner(root)
    if inner is not None:
        raise NestedAssetDir(
            f"{root} contains the asset directory {inner}: asset directories cannot nest",
            "run 'ama init' in a folder that holds no asset directory",
        )
    config = Config.open(environ)
    LocalClasses.open(environ).get(class_name)
    head = Head(class_name=class_name, asset=f"{TEMP_PREFIX}{token_hex(6)}",
                remote=config.get("remote.default"), project=config.get("project.active"))
    meta = root / META_DIR
    meta.mkdir()
    try:
        head.write(meta)
    except BaseException:
        import shutil

        shutil.rmtree(meta, ignore_errors=True)
        raise
    register(home_dir(environ), root)
    return head


def _find_inner(root: Path) -> Path | None:
    """Return an asset directory below ``root`` (not following symlinks), or None."""
    for folder, dirs, _files in os.walk(root):
        if META_DIR in dirs and Path(folder) != root:
            return Path(folder)
        if META_DIR in dirs:
            dirs.remove(META_DIR)
    return None
