"""Checking the asset store: every object re-hashed, every ref and link followed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import NamedTuple

from ama.plumbing.hashing import hash_file, is_id
from ama.plumbing.objects import TREE_HEADER, TREE_HEADERS, InvalidObject, Manifest, Tree
from ama.plumbing.refs import SYMREF_PREFIX
from ama.plumbing.store import Store


class Problem(NamedTuple):
    """One finding: ``kind`` (corrupt, missing, invalid, badsize, garbage), the object id it
    concerns (empty for garbage) and a detail naming where."""

    kind: str
    id: str
    detail: str


def check(store: Store, full: bool = False,
          progress: Callable[[int, int], None] | None = None) -> Iterator[Problem]:
    """Yield every problem in ``store``; see ama-fsck(1) for what ``full`` adds."""
    odb = store.objects
    for temp in odb.temp_files():
        yield Problem("garbage", "", str(temp))
    ids = sorted(odb)
    good: set[str] = set()
    structured: dict[str, bytes] = {}
    for n, oid in enumerate(ids, start=1):
        path = odb.path(oid)
        try:
            actual = hash_file(path)
        except OSError as e:
            yield Problem("corrupt", oid, f"{path}: cannot be read ({e.strerror})")
            continue
        if actual != oid:
            yield Problem("corrupt", oid, f"{path}: its bytes hash to {actual}")
        else:
            good.add(oid)
            if full:
                with open(path, "rb") as f:
                    head = f.read(len(TREE_HEADER))
                if head in TREE_HEADERS or head.startswith(b'{"author":'):
                    structured[oid] = path.read_bytes()
        if progress and (n % 1000 == 0 or n == len(ids)):
            progress(n, len(ids))
    for name, value in store.refs.iter():
        if not value.startswith(SYMREF_PREFIX) and value not in good and is_id(value):
            yield Problem("missing", value, f"named by ref {name}")
    if full:
        yield from _check_links(odb, structured, good)


def _check_links(odb, structured: dict[str, bytes], good: set[str]) -> Iterator[Problem]:  # type: ignore[no-untyped-def]
    tree_sizes: dict[str, int] = {}
    trees: dict[str, Tree] = {}
    for oid, data in structured.items():
        if data.startswith(TREE_HEADERS):
            try:
                trees[oid] = Tree.deserialize(data)
            except InvalidObject as e:
                yield Problem("invalid", oid, e.message)
            continue
        try:
            manifest = Manifest.deserialize(data)
        except InvalidObject:
            continue  # a blob that merely looks like JSON
        for ref, what in [(manifest.tree, "tree"), *[(p, "parent") for p in manifest.parents]]:
            if ref not in good:
                yield Problem("missing", ref, f"{what} of manifest {oid}")
    for oid, tree in trees.items():
        tree_sizes[oid] = tree.size
    for oid, tree in trees.items():
        for entry in tree.entries:
            if entry.id not in good:
                yield Problem("missing", entry.id, f"{entry.name} in tree {oid}")
                continue
            if entry.type == "tree":
                actual = tree_sizes.get(entry.id)
            else:
                actual = os.stat(odb.path(entry.id)).st_size
            if actual is not None and actual != entry.size:
                yield Problem("badsize", entry.id,
                              f"{entry.name} in tree {oid} says {entry.size} bytes, "
                              f"it has {actual}")
