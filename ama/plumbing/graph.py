"""The object graph: trees built from staged files, trees walked back into paths, two trees
compared file by file, and the set of objects reachable from manifests (history through
parents, files through trees)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import NoReturn

from ama.plumbing.errors import NotFound
from ama.plumbing.index import IndexEntry
from ama.plumbing.objects import (
    MAX_NAME_BYTES,
    TREE_HEADER,
    TREE_HEADER_LINKS,
    TREE_HEADER_PROXIES,
    TREE_HEADERS,
    InvalidObject,
    Manifest,
    Tree,
    TreeEntry,
    parse_entry_line,
)
from ama.plumbing.odb import ObjectDatabase

# One side of a file in a tree diff: its type (``blob`` or ``exec``), id and size.
FileSide = tuple[str, str, int]
# A tree line as the diff accepts it without a closer look: a known type, 64 lower-case hex
# digits, a size without leading zeros, a name holding no "/", NUL, tab, CR nor LF.
# Only within write_tree: marks the entry of a proxy, whose id is then its descriptor's.
MODE_PROXY = -1
_LINE = re.compile(rb"(blob|exec|link|proxy|tree) ([0-9a-f]{64}) (0|[1-9][0-9]*)\t([^/\0\t\r\n]+)")


def write_tree(odb: ObjectDatabase, entries: Iterable[IndexEntry],
               proxies: dict[str, tuple[str, str]] | None = None,
               checked: bool = False) -> str:
    """Write the trees for staged ``entries`` (any order) and return the root tree's id.

    Every blob must already be in ``odb``: a tree never names an object this store lacks.
    ``checked``: the caller has just seen each of them there, inside the same batch (an
    upload stores lost blobs again first), so they are not looked for a second time.
    A path of ``proxies`` (path → (id of the bytes, id of the descriptor), see
    :meth:`~ama.plumbing.index.Index.staged_proxies`) staged with those bytes becomes a
    ``proxy`` entry naming its descriptor, which must be in ``odb`` (its bytes need not).
    """
    proxies = proxies or {}
    root: dict[str, object] = {}
    for e in entries:
        node = root
        *folders, name = e.path.split("/")
        for folder in folders:
            child = node.setdefault(folder, {})
            if not isinstance(child, dict):
                raise InvalidObject(f"{e.path}: {folder} is both a file and a folder")
            node = child
        proxy = proxies.get(e.path)
        if proxy is not None and proxy[0] == e.id and e.type == "blob":
            e = e._replace(id=proxy[1], mode=MODE_PROXY)
        node[name] = e
    with odb.batch():
        oid, _size = _write_node(odb, root, "", checked)
    return oid


def _write_node(odb: ObjectDatabase, node: dict[str, object], where: str,
                checked: bool = False) -> tuple[str, int]:
    entries = []
    for name, child in node.items():
        if isinstance(child, dict):
            oid, size = _write_node(odb, child, f"{where}{name}/", checked)
            entries.append(TreeEntry("tree", oid, size, name))
        else:
            assert isinstance(child, IndexEntry)
            if not (checked or odb.has(child.id)):
                raise NotFound(
                    f"{child.path} is staged as {child.id}, which is not in the object database",
                    f"stage it again with 'ama update-index --add {child.path}'",
                )
            kind = "proxy" if child.mode == MODE_PROXY else child.type
            entries.append(TreeEntry(kind, child.id, child.size, name))
    tree = Tree.of(entries)
    return odb.write(tree.serialize()), tree.size


def read_tree(odb: ObjectDatabase, oid: str) -> Tree:
    """Return the tree ``oid``; raise :class:`InvalidObject` if it is not a tree."""
    data = odb.get(oid)
    try:
        return Tree.deserialize(data)
    except InvalidObject as e:
        raise InvalidObject(f"object {oid} is not a tree: {e.message}") from None


def read_manifest(odb: ObjectDatabase, oid: str) -> Manifest:
    """Return the manifest ``oid``; raise :class:`InvalidObject` if it is not one."""
    data = odb.get(oid)
    try:
        return Manifest.deserialize(data)
    except InvalidObject as e:
        raise InvalidObject(f"object {oid} is not a manifest: {e.message}") from None


def walk_tree(odb: ObjectDatabase, oid: str, recursive: bool = True, prefix: str = ""
              ) -> Iterator[tuple[str, TreeEntry]]:
    """Yield ``(path, entry)`` for the tree ``oid`` in path order.

    With ``recursive`` subtrees are entered and only blobs are yielded, as ``ls-tree -r``.
    """
    for entry in read_tree(odb, oid).entries:
        path = prefix + entry.name
        if entry.type == "tree" and recursive:
            yield from walk_tree(odb, entry.id, True, path + "/")
        else:
            yield path, entry


def diff_trees(odb: ObjectDatabase, old: str | None, new: str | None, *,
               want: Callable[[list[str]], object] | None = None
               ) -> Iterator[tuple[str, FileSide | None, FileSide | None]]:
    """Yield ``(path, old, new)`` for every file whose type, id or size differs between the
    trees ``old`` and ``new`` (None: an empty tree); a side is ``(type, id, size)``, or None
    where the path holds no file (absent, or a folder). A path that is a file on one side
    and a folder on the other yields the file's removal or addition, and each file below
    the folder.

    The work is proportional to what differs: subtrees with equal ids are skipped, and in a
    folder present on both sides only the lines found on one side alone are parsed. Those
    lines get every check of a tree entry (a name is never empty, ``.``, ``..`` nor holds
    ``/``; an id is 64 hex digits), so no path yielded leaves the tree. Folders are compared
    one level at a time; ``want``, when given, is called with the ids of each level's trees
    before they are read (to fetch those the store lacks). Each tree is read through
    ``odb`` (so re-hashed against its id). Paths come level by level, sorted within a folder.

    Raises :class:`InvalidObject` for a tree that breaks the format in what is read, and
    the store's errors (:class:`~ama.plumbing.odb.MissingObject`).
    """
    level: list[tuple[str | None, str | None, str]] = [(old, new, "")] if old != new else []
    while level:
        if want is not None:
            want(list(dict.fromkeys(t for a, b, _ in level for t in (a, b) if t is not None)))
        below: list[tuple[str | None, str | None, str]] = []
        for old_id, new_id, prefix in level:
            old_lines = _tree_lines(odb, old_id)
            new_lines = _tree_lines(odb, new_id)
            if old_lines and new_lines:
                old_set, new_set = set(old_lines), set(new_lines)
                removed = _entries(old_id, old_lines, old_set - new_set)
                added = _entries(new_id, new_lines, new_set - old_set)
            else:
                removed = _entries(old_id, old_lines, old_lines)
                added = _entries(new_id, new_lines, new_lines)
            for name in sorted(removed.keys() | added.keys(), key=_utf8):
                a, b = removed.get(name), added.get(name)
                sub_old = a[1] if a is not None and a[0] == "tree" else None
                sub_new = b[1] if b is not None and b[0] == "tree" else None
                if sub_old != sub_new:
                    below.append((sub_old, sub_new, f"{prefix}{name}/"))
                a_file = None if sub_old else a
                b_file = None if sub_new else b
                if a_file != b_file:
                    yield prefix + name, a_file, b_file
        level = below


def tree_entries(odb: ObjectDatabase, oid: str) -> list[tuple[str, str, int, str]]:
    """The entries ``(type, id, size, name)`` of the tree ``oid`` in its order, read through
    ``odb`` (so re-hashed against its id), each line checked as :func:`diff_trees` checks
    them (a name is never empty, ``.``, ``..`` nor holds ``/``; an id is 64 hex digits),
    without building a validated entry each. Raises :class:`InvalidObject` naming the
    broken line."""
    lines = _tree_lines(odb, oid)
    return [(kind, entry_id, size, name)
            for name, (kind, entry_id, size) in _entries(oid, lines, lines).items()]


def _utf8(name: str) -> bytes:
    return name.encode("utf-8")


def _tree_lines(odb: ObjectDatabase, oid: str | None) -> list[bytes]:
    """The entry lines of the tree ``oid`` (none for None), without their newlines."""
    if oid is None:
        return []
    data = odb.get(oid)
    if not data.startswith(TREE_HEADERS):
        raise InvalidObject(f"object {oid} is not a tree: it does not start with 'ama-tree 1', "
                            "2 or 3")
    lines = data[len(TREE_HEADER):].split(b"\n")
    if lines.pop() != b"":
        raise InvalidObject(f"object {oid} is not a tree: it does not end with a newline")
    proxies = any(line.startswith(b"proxy ") for line in lines)
    expected = (TREE_HEADER_PROXIES if proxies
                else TREE_HEADER_LINKS if any(line.startswith(b"link ") for line in lines)
                else TREE_HEADER)
    if not data.startswith(expected):
        raise InvalidObject(f"object {oid} is not a tree: its header does not match its "
                            "entries ('ama-tree 3' is for, and only for, a tree holding a "
                            "proxy, 'ama-tree 2' for one holding a link and no proxy)")
    return lines


def _entries(oid: str | None, lines: list[bytes], chosen: Iterable[bytes]
             ) -> dict[str, tuple[str, str, int]]:
    """Name → (type, id, size) for the ``chosen`` lines of the tree ``oid`` (``lines``),
    each checked as a tree entry is; two lines for one name break the format."""
    found: dict[str, tuple[str, str, int]] = {}
    match = _LINE.fullmatch
    for line in chosen:
        # The pattern holds every rule of a line but two of a name's: not "." nor "..",
        # and at most MAX_NAME_BYTES; a line failing any is parsed again for the message.
        m = match(line)
        try:
            if m is None or len(m[4]) > MAX_NAME_BYTES:
                raise ValueError
            name = m[4].decode("utf-8")
        except ValueError:  # and UnicodeDecodeError
            _raise_for_line(oid, lines, line)
        if name in (".", ".."):
            _raise_for_line(oid, lines, line)
        if name in found:
            raise InvalidObject(f"object {oid} is not a tree: two entries are named {name!r}")
        found[name] = (m[1].decode(), m[2].decode(), int(m[3]))
    return found


def _raise_for_line(oid: str | None, lines: list[bytes], line: bytes) -> NoReturn:
    """Raise the :class:`InvalidObject` naming ``line``'s number and broken rule (the
    number is looked up only here, once a line failed)."""
    try:
        parse_entry_line(line, lines.index(line) + 2)
    except InvalidObject as e:
        raise InvalidObject(f"object {oid} is not a tree: {e.message}") from None
    raise InvalidObject(f"object {oid} is not a tree")


def tree_of(odb: ObjectDatabase, oid: str) -> str:
    """Return the root tree of ``oid``: itself for a tree, its tree for a manifest.

    Raises :class:`InvalidObject` for any other object.
    """
    from ama.plumbing.objects import object_type

    data = odb.get(oid)
    kind = object_type(data)
    if kind == "tree":
        return oid
    if kind == "manifest":
        return Manifest.deserialize(data).tree
    raise InvalidObject(f"object {oid} is a blob, not a tree or a manifest")


def reachable(odb: ObjectDatabase, include: Iterable[str], exclude: Iterable[str] = (),
              objects: bool = True) -> Iterator[tuple[str, str | None]]:
    """Yield ``(id, path)`` for manifests reachable from ``include`` through parents, and (with
    ``objects``) their trees and blobs, leaving out everything reachable from ``exclude``.

    Manifests come first, newest first, with path None; then each tree or blob with the path
    of its first appearance (the root tree's is ``""``), like ``git rev-list --objects``.
    """
    seen: set[str] = set()
    if exclude:
        seen.update(oid for oid, _path in reachable(odb, exclude, (), objects))
    stack = list(reversed(list(include)))
    trees: list[str] = []
    while stack:
        oid = stack.pop()
        if oid in seen:
            continue
        seen.add(oid)
        manifest = read_manifest(odb, oid)
        trees.append(manifest.tree)
        yield oid, None
        stack.extend(reversed(manifest.parents))
    if objects:
        for tree in trees:
            yield from _tree_objects(odb, tree, "", seen)


def _tree_objects(odb: ObjectDatabase, oid: str, path: str, seen: set[str]
                  ) -> Iterator[tuple[str, str]]:
    if oid in seen:
        return
    seen.add(oid)
    yield oid, path
    for entry in read_tree(odb, oid).entries:
        child = f"{path}/{entry.name}" if path else entry.name
        if entry.type == "tree":
            yield from _tree_objects(odb, entry.id, child, seen)
        elif entry.id not in seen:
            seen.add(entry.id)
            yield entry.id, child
