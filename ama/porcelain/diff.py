"""``ama diff [VERSION [VERSION]]``: which files differ between two versions, or between a
version and the work tree.

A VERSION is ``HEAD`` (the version the asset directory holds), a version number of this
asset known locally (``0.0.1``), or anything ``ama rev-parse`` accepts (a manifest or tree
id, an id prefix, a ref). With no VERSION the work tree is compared with HEAD's version
(staged and unstaged changes together); with one, with that version.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import Any

from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.graph import tree_of
from ama.plumbing.hashing import hash_bytes, hash_file
from ama.plumbing.head import HeadRef
from ama.plumbing.index import path_key
from ama.plumbing.objects import VERSION_RE
from ama.plumbing.revision import resolve
from ama.porcelain.asset import Asset, flatten_tree, scan
from ama.porcelain.classes import project_dir

# (id, size, type) of one file on one side
Side = dict[str, tuple[str, int, str]]


@dataclass(frozen=True)
class FileChange:
    """One path that differs: ``status`` is A (added), D (deleted) or M (modified)."""

    status: str
    path: str
    old: tuple[str, int, str] | None
    new: tuple[str, int, str] | None

    def to_json(self) -> dict[str, Any]:
        def side(value: tuple[str, int, str] | None) -> dict[str, Any] | None:
            return None if value is None else {"id": value[0], "size": value[1],
                                               "type": value[2]}
        return {"status": self.status, "path": self.path, "old": side(self.old),
                "new": side(self.new)}


def version_dir(asset: Asset) -> str:
    """Where versions of this asset known locally are cached: one file per version,
    ``projects/<remote>/<project>/versions/<class>/<ordinal>/<version>``, holding the
    manifest id (written by the commands that upload, fetch and clone)."""
    head = asset.head
    return os.path.join(project_dir(asset.store.home, head.remote, head.project), "versions",
                        head.class_name, head.asset)


def resolve_version(asset: Asset, text: str) -> str:
    """Return the root tree id of the version named ``text``.

    Raises :class:`NotFound` (a version not known locally, HEAD of a temp asset),
    :class:`BadInput` or an object error.
    """
    odb = asset.odb
    if text == "HEAD":
        if asset.head.manifest is None:
            raise NotFound(f"{asset.head.name} has no version yet: it was never uploaded",
                           "compare with the work tree by running 'ama diff' alone")
        return tree_of(odb, asset.head.manifest)
    if VERSION_RE.match(text):
        if asset.head.is_temp:
            raise NotFound(f"{asset.head.name} has no version {text}: it was never uploaded")
        try:
            with open(os.path.join(version_dir(asset), text), encoding="utf-8") as f:
                manifest = f.read().strip()
        except FileNotFoundError:
            raise NotFound(f"version {text} of {asset.head.name} is not known on this machine",
                           "list versions with 'ama versions', fetch them with 'ama fetch'"
                           ) from None
        return tree_of(odb, manifest)
    head_refs = lambda: HeadRef(asset.dir.meta)  # noqa: E731
    if text.startswith("HEAD"):
        raise BadInput(f"{text!r}: use a version number to name an earlier version",
                       "list versions with 'ama versions'")
    return tree_of(odb, resolve(odb, asset.store.refs, head_refs, text))


def tree_side(asset: Asset, tree: str) -> Side:
    return {p: (e.id, e.size, e.type) for p, e in flatten_tree(asset.odb, tree).items()}


def work_side(asset: Asset) -> Side:
    """The files of the work tree that are staged, with their current content."""
    index = asset.index()
    side: Side = {e.path: (e.id, e.size, e.type) for e in index.entries.values()}
    work = scan(asset, index)
    root = os.fspath(asset.root)
    for entry, st in work.stale:
        full = os.path.join(root, entry.path)
        if stat.S_ISLNK(st.st_mode):  # a link's content is its target
            target = os.fsencode(os.readlink(full))
            side[entry.path] = (hash_bytes(target), len(target), "link")
            continue
        kind = "exec" if st.st_mode & 0o100 else "blob"
        oid = hash_file(full, st.st_size)
        side[entry.path] = (oid, st.st_size, kind)
    for entry in work.missing:
        del side[entry.path]
    return side


def diff(asset: Asset, versions: list[str]) -> list[FileChange]:
    """Return the files that differ, sorted by path (see the module docstring)."""
    if len(versions) > 2:
        raise BadInput("name at most two versions to compare")
    if not versions:
        old = tree_side(asset, resolve_version(asset, "HEAD")) if asset.head.manifest else {}
        new = work_side(asset)
    elif len(versions) == 1:
        old = tree_side(asset, resolve_version(asset, versions[0]))
        new = work_side(asset)
    else:
        old = tree_side(asset, resolve_version(asset, versions[0]))
        new = tree_side(asset, resolve_version(asset, versions[1]))
    return compare_sides(old, new)


# A text diff holds both sides in memory; beyond this, compare ids with plain `ama diff`.
MAX_TEXT_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class FileDiff:
    """One file's text on two sides (None where the file does not exist), and the labels
    that name the sides (``0.0.1:data/x.csv``, ``work tree:data/x.csv``)."""

    path: str
    old_label: str
    new_label: str
    old: str | None
    new: str | None

    def unified(self, context: int = 3) -> str:
        import difflib

        lines = difflib.unified_diff(
            (self.old or "").splitlines(keepends=True), (self.new or "").splitlines(keepends=True),
            self.old_label if self.old is not None else "/dev/null",
            self.new_label if self.new is not None else "/dev/null", n=context)
        return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                       for line in lines)

    def html(self) -> str:
        """A self-contained HTML page showing both sides next to each other."""
        import difflib

        return difflib.HtmlDiff(wrapcolumn=100).make_file(
            (self.old or "").splitlines(), (self.new or "").splitlines(),
            self.old_label, self.new_label, context=True, numlines=3).lstrip()


def file_diff(asset: Asset, path: str, versions: list[str]) -> FileDiff:
    """Return the text of ``path`` on the two sides ``versions`` names (as for :func:`diff`:
    none is HEAD against the work tree, one is that version against the work tree). Bytes
    not in the store are fetched from the remote and verified first.

    Raises :class:`BadInput` for a file that is not UTF-8 text or is too large to diff as
    text, :class:`NotFound` when neither side has ``path``, and what :func:`diff` raises.
    """
    if len(versions) > 2:
        raise BadInput("name at most two versions to compare")
    path = path.strip("/")
    names = (["HEAD"] if not versions else versions[:1])
    old_side = tree_side(asset, resolve_version(asset, names[0]))
    old = _text(asset, path, old_side.get(path), names[0])
    if len(versions) == 2:
        new = _text(asset, path, tree_side(asset, resolve_version(asset, versions[1])).get(path),
                    versions[1])
        new_label = f"{versions[1]}:{path}"
    else:
        new, new_label = _work_text(asset, path), f"work tree:{path}"
    if old is None and new is None:
        raise NotFound(f"{path} is on neither side of the comparison",
                       "list the files that differ with 'ama diff --name-status'")
    return FileDiff(path, f"{names[0]}:{path}", new_label, old, new)


def _decode(data: bytes, path: str, where: str) -> str:
    if len(data) > MAX_TEXT_BYTES or b"\0" in data:
        raise BadInput(f"{path} ({where}) is not a text file this diff can show "
                       f"({len(data)} bytes)", "compare ids and sizes with 'ama diff'")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path} ({where}) is not UTF-8 text",
                       "compare ids and sizes with 'ama diff'") from None


def _text(asset: Asset, path: str, entry: tuple[str, int, str] | None, where: str
          ) -> str | None:
    if entry is None:
        return None
    oid, size, _kind = entry
    if size > MAX_TEXT_BYTES:
        raise BadInput(f"{path} ({where}) is too large to diff as text ({size} bytes)",
                       "compare ids and sizes with 'ama diff'")
    if not asset.odb.has(oid):
        from ama.porcelain.download import receive
        from ama.porcelain.remotes import open_remote

        head = asset.head
        transport, remote = open_remote(asset.config, head.remote, head.project)
        receive(transport, remote.project, asset.odb, [(oid, size)])
    return _decode(asset.odb.get(oid), path, where)


def _work_text(asset: Asset, path: str) -> str | None:
    full = asset.root / path
    if not full.is_file() or full.is_symlink():
        return None
    if full.stat().st_size > MAX_TEXT_BYTES:
        raise BadInput(f"{path} (work tree) is too large to diff as text",
                       "compare ids and sizes with 'ama diff'")
    return _decode(full.read_bytes(), path, "work tree")


def compare_sides(old: Side, new: Side) -> list[FileChange]:
    changes = []
    for path, value in new.items():
        before = old.get(path)
        if before is None:
            changes.append(FileChange("A", path, None, value))
        elif before[0] != value[0] or before[2] != value[2]:
            changes.append(FileChange("M", path, before, value))
    changes.extend(FileChange("D", p, v, None) for p, v in old.items() if p not in new)
    changes.sort(key=lambda c: path_key(c.path))
    return changes
