"""Asset directories: finding one, naming paths inside it, and walking its files.

An asset directory has ``.ama/`` at its root, found upward from the working directory as git
finds ``.git/``. ``AMA_INDEX_FILE`` points commands at another index file and makes the
current directory the work tree, so scripts can build trees anywhere. ``.amaignore`` at the
root holds gitignore-style patterns. Regular files and symbolic links are content (a link
as a link, see ama-format(5)): a FIFO, socket, device or a name a tree cannot hold is
refused with an error naming every such path.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ama.plumbing.durable import is_temp
from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.objects import name_problem

if TYPE_CHECKING:
    from pathspec import GitIgnoreSpec

META_DIR = ".ama"
IGNORE_FILE = ".amaignore"


class NotAnAssetDir(NotFound):
    """No ``.ama/`` in the working directory or any directory above it."""


class UnsupportedFiles(BadInput):
    """Files that cannot be content: special files, symlinks, invalid names."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        lines = "\n".join(f"  {path}: {why}" for path, why in problems)
        super().__init__(
            f"{len(problems)} path(s) cannot be added:\n{lines}",
            f"remove or rename them, or list them in {IGNORE_FILE}",
        )
        self.problems = problems


class OutsideAssetDir(BadInput):
    """A path that is not inside the asset directory."""


@dataclass(frozen=True)
class AssetDir:
    """The work tree ``root`` and the files ama keeps for it."""

    root: Path
    index_path: Path

    @property
    def meta(self) -> Path:
        return self.root / META_DIR

    @classmethod
    def find(cls, start: str | os.PathLike[str] | None = None,
             environ: Mapping[str, str] | None = None) -> AssetDir:
        """Return the asset directory holding ``start`` (default: the working directory).

        Raises :class:`NotAnAssetDir` when there is none and ``AMA_INDEX_FILE`` is unset.
        """
        environ = os.environ if environ is None else environ
        here = Path(start if start is not None else os.getcwd()).absolute()
        index_file = environ.get("AMA_INDEX_FILE")
        if index_file:
            return cls(here, (here / index_file).absolute())
        for candidate in (here, *here.parents):
            if (candidate / META_DIR).is_dir():
                return cls(candidate, candidate / META_DIR / "index")
        raise NotAnAssetDir(
            f"not an asset directory (nor any parent up to /): {here}",
            "run 'ama init CLASS' to make one, or set AMA_INDEX_FILE to build trees anywhere",
        )

    def relpath(self, path: str | os.PathLike[str], cwd: str | os.PathLike[str] | None = None
                ) -> str:
        """Return ``path`` (relative to ``cwd``) as a ``/``-separated path from the root.

        The root itself is ``""``. Raises :class:`OutsideAssetDir`.
        """
        # String operations, not Path: update-index calls this once per file it stages.
        base = os.fspath(cwd) if cwd is not None else os.getcwd()
        full = os.path.normpath(os.path.join(base, path))
        root = os.path.normpath(self.root)
        if full == root:
            return ""
        inside = root if root.endswith("/") else root + "/"
        if not full.startswith(inside):
            raise OutsideAssetDir(f"{path} is outside the asset directory {self.root}")
        text = full[len(inside):]
        if text == META_DIR or text.startswith(META_DIR + "/"):
            raise OutsideAssetDir(f"{path} is inside {META_DIR}/, which holds ama's own files")
        return text

    def walk(self, under: str = "", link_root: str | os.PathLike[str] | None = None
             ) -> Iterator[tuple[str, os.stat_result]]:
        """Yield ``(path, lstat)`` for each regular file and symbolic link below ``under``,
        in no fixed order (a link is not followed, even to a folder).

        ``.ama/``, ama's temp files (``.ama-tmp-*``, see
        :data:`~ama.plumbing.durable.TEMP_PREFIX`) and paths matched by ``.amaignore`` are
        skipped. Raises
        :class:`UnsupportedFiles` naming every path that is not a regular file or has a name
        a tree cannot hold (after yielding the good ones). A symlink into ``link_root`` (the
        store's objects, placed by the symlink strategy) counts as the file it points at.
        """
        yield from walk(self.root, under, link_root)


def load_ignore(root: Path) -> GitIgnoreSpec | None:
    """Return the ``.amaignore`` spec at ``root``, or None when there is none."""
    try:
        lines = (root / IGNORE_FILE).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return None
    import pathspec

    spec = pathspec.GitIgnoreSpec.from_lines(lines)
    return spec if spec.patterns else None


def walk(root: Path, under: str = "", link_root: str | os.PathLike[str] | None = None
         ) -> Iterator[tuple[str, os.stat_result]]:
    """Walk the regular files below ``root/under`` (see :meth:`AssetDir.walk`)."""
    ignore = load_ignore(root)
    problems: list[tuple[str, str]] = []
    start = os.path.join(root, under) if under else str(root)
    prefix = under + "/" if under else ""
    try:
        top = os.lstat(start)
    except FileNotFoundError:
        raise NotFound(f"{under or root}: no such file or directory") from None
    if not stat.S_ISDIR(top.st_mode):
        if not stat.S_ISLNK(top.st_mode):
            _check_one(under, top, problems)
        if not problems and not (ignore and ignore.match_file(under)):
            yield under, top
        if problems:
            raise UnsupportedFiles(problems)
        return
    stack = [(start, prefix)]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except PermissionError:
            problems.append((rel.rstrip("/") or ".", "cannot be read (permission denied)"))
            continue
        for entry in entries:
            name = entry.name
            path = rel + name
            if not rel and name == META_DIR:
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            if ignore is not None and ignore.match_file(path + "/" if is_dir else path):
                continue
            problem = name_problem(name)
            if problem:
                problems.append((show_path(path), problem))
                continue
            if is_dir:
                stack.append((entry.path, path + "/"))
                continue
            if is_temp(name):  # left by a killed checkout, which the next one removes
                continue
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode):
                yield path, st
            elif stat.S_ISLNK(st.st_mode) and links_into(entry.path, link_root):
                yield path, os.stat(entry.path)
            elif stat.S_ISLNK(st.st_mode):
                yield path, st
            else:
                _check_one(path, st, problems)
    if problems:
        problems.sort()
        raise UnsupportedFiles(problems)


def links_into(path: str, link_root: str | os.PathLike[str] | None) -> bool:
    if link_root is None:
        return False
    target = os.path.realpath(path)
    return target.startswith(os.path.join(os.path.realpath(link_root), "")) and (
        os.path.isfile(target))


def file_problem(mode: int) -> str | None:
    """Return why a file of this mode cannot be content, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISLNK(mode):
        return "is a symbolic link (ama stores file contents only)"
    if stat.S_ISFIFO(mode):
        return "is a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "is a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    return "is not a regular file"


def _check_one(path: str, st: os.stat_result, problems: list[tuple[str, str]]) -> None:
    why = file_problem(st.st_mode)
    if why:
        problems.append((show_path(path), why))


def show_path(path: str) -> str:
    """A path as a user can read it, with undecodable bytes and control characters escaped."""
    if path.isprintable():
        try:
            path.encode("utf-8")
            return path
        except UnicodeEncodeError:
            pass
    return repr(path)
