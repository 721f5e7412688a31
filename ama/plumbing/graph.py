"""The object graph: trees built from staged files, trees walked back into paths, and the
set of objects reachable from manifests (history through parents, files through trees)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ama.plumbing.errors import NotFound
from ama.plumbing.index import IndexEntry
from ama.plumbing.objects import InvalidObject, Manifest, Tree, TreeEntry
from ama.plumbing.odb import ObjectDatabase


def write_tree(odb: ObjectDatabase, entries: Iterable[IndexEntry]) -> str:
    """Write the trees for staged ``entries`` (any order) and return the root tree's id.

    Every blob must already be in ``odb``: a tree never names an object this store lacks.
    """
    root: dict[str, object] = {}
    for e in entries:
        node = root
        *folders, name = e.path.split("/")
        for folder in folders:
            child = node.setdefault(folder, {})
            if not isinstance(child, dict):
                raise InvalidObject(f"{e.path}: {folder} is both a file and a folder")
            node = child
        node[name] = e
    with odb.batch():
        oid, _size = _write_node(odb, root, "")
    return oid


def _write_node(odb: ObjectDatabase, node: dict[str, object], where: str) -> tuple[str, int]:
    entries = []
    for name, child in node.items():
        if isinstance(child, dict):
            oid, size = _write_node(odb, child, f"{where}{name}/")
            entries.append(TreeEntry("tree", oid, size, name))
        else:
            assert isinstance(child, IndexEntry)
            if not odb.has(child.id):
                raise NotFound(
                    f"{child.path} is staged as {child.id}, which is not in the object database",
                    f"stage it again with 'ama update-index --add {child.path}'",
                )
            entries.append(TreeEntry(child.type, child.id, child.size, name))
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
