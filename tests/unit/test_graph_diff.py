"""Comparing two trees file by file (``diff_trees``): what differs, what is never read, and
trees that would place a file outside the work tree."""

from __future__ import annotations

import random
from typing import Union

import pytest

from ama.plumbing.graph import diff_trees, walk_tree
from ama.plumbing.objects import TREE_HEADER, InvalidObject, Tree, TreeEntry
from ama.plumbing.odb import MemoryObjectDatabase, MissingObject

# A folder: name → bytes (a file), ("exec", bytes) (an executable file) or a folder.
Files = dict[str, Union[bytes, tuple[str, bytes], "Files"]]


def put(odb: MemoryObjectDatabase, files: Files) -> str:
    entries = []
    for name, value in files.items():
        if isinstance(value, dict):
            oid = put(odb, value)
            entries.append(TreeEntry("tree", oid, Tree.deserialize(odb.get(oid)).size, name))
        elif isinstance(value, tuple):
            entries.append(TreeEntry("exec", odb.write(value[1]), len(value[1]), name))
        else:
            entries.append(TreeEntry("blob", odb.write(value), len(value), name))
    return odb.write(Tree.of(entries).serialize())


def diff(odb: MemoryObjectDatabase, old: str | None, new: str | None) -> dict[str, tuple]:
    found = {}
    for path, a, b in diff_trees(odb, old, new):
        assert path not in found, path
        found[path] = (a, b)
    return found


def side(odb: MemoryObjectDatabase, data: bytes, kind: str = "blob") -> tuple[str, str, int]:
    return (kind, odb.write(data), len(data))


def test_equal_trees_differ_in_nothing_and_are_not_read() -> None:
    odb = MemoryObjectDatabase()
    tree = put(odb, {"a": b"1", "d": {"b": b"2"}})
    asked: list[list[str]] = []
    assert list(diff_trees(odb, tree, tree, want=asked.append)) == []
    assert asked == []
    assert list(diff_trees(odb, None, None)) == []


def test_added_removed_and_modified_files() -> None:
    odb = MemoryObjectDatabase()
    old = put(odb, {"keep": b"same", "gone": b"old", "edit": b"before", "d": {"x": b"x"}})
    new = put(odb, {"keep": b"same", "born": b"new", "edit": b"after!", "d": {"x": b"x"}})
    assert diff(odb, old, new) == {
        "gone": (side(odb, b"old"), None),
        "born": (None, side(odb, b"new")),
        "edit": (side(odb, b"before"), side(odb, b"after!")),
    }
    assert diff(odb, new, old)["born"] == (side(odb, b"new"), None)


def test_nested_changes_read_only_the_folders_that_differ() -> None:
    odb = MemoryObjectDatabase()
    same = {f"f{n}": f"same {n}".encode() for n in range(5)}
    old = put(odb, {"a": {"b": {"c": b"old"}, "same": same}, "z": {"same": same}})
    new = put(odb, {"a": {"b": {"c": b"new", "d": b"d"}, "same": same}, "z": {"same": same}})
    asked: list[list[str]] = []
    found = {p: (a, b) for p, a, b in diff_trees(odb, old, new, want=asked.append)}
    assert found == {"a/b/c": (side(odb, b"old"), side(odb, b"new")),
                     "a/b/d": (None, side(odb, b"d"))}
    same_id = put(odb, same)
    z_id = put(odb, {"same": same})
    wanted = {oid for level in asked for oid in level}
    assert same_id not in wanted and z_id not in wanted
    # One level of folders at a time: the root pair, then a/, then a/b/.
    assert [len(level) for level in asked] == [2, 2, 2]


def test_executable_bit_alone_is_a_change() -> None:
    odb = MemoryObjectDatabase()
    old = put(odb, {"run.sh": b"#!/bin/sh\n"})
    new = put(odb, {"run.sh": ("exec", b"#!/bin/sh\n")})
    assert diff(odb, old, new) == {
        "run.sh": (side(odb, b"#!/bin/sh\n"), side(odb, b"#!/bin/sh\n", "exec"))}
    assert diff(odb, new, old)["run.sh"][0][0] == "exec"


def test_a_file_becoming_a_folder_and_back() -> None:
    odb = MemoryObjectDatabase()
    as_file = put(odb, {"p": b"a file", "q": b"q"})
    as_folder = put(odb, {"p": {"inner": b"i", "deep": {"x": b"x"}}, "q": b"q"})
    assert diff(odb, as_file, as_folder) == {
        "p": (side(odb, b"a file"), None),
        "p/inner": (None, side(odb, b"i")),
        "p/deep/x": (None, side(odb, b"x")),
    }
    assert diff(odb, as_folder, as_file) == {
        "p": (None, side(odb, b"a file")),
        "p/inner": (side(odb, b"i"), None),
        "p/deep/x": (side(odb, b"x"), None),
    }


def test_from_or_to_no_tree_is_every_file() -> None:
    odb = MemoryObjectDatabase()
    tree = put(odb, {"a": b"1", "d": {"b": b"2", "e": {}}})
    files = {p: (e.type, e.id, e.size) for p, e in walk_tree(odb, tree)}
    assert diff(odb, None, tree) == {p: (None, s) for p, s in files.items()}
    assert diff(odb, tree, None) == {p: (s, None) for p, s in files.items()}
    assert diff(odb, put(odb, {}), tree) == {p: (None, s) for p, s in files.items()}


@pytest.mark.parametrize("seed", range(5))
def test_agrees_with_comparing_every_file(seed: int) -> None:
    rng = random.Random(seed)
    odb = MemoryObjectDatabase()

    def folder(depth: int) -> Files:
        out: Files = {}
        for n in range(rng.randint(0, 6)):
            roll = rng.random()
            if roll < 0.25 and depth < 3:
                out[f"n{n}"] = folder(depth + 1)
            elif roll < 0.35:
                out[f"n{n}"] = ("exec", bytes([rng.randint(0, 2)]))
            else:
                out[f"n{n}"] = bytes([rng.randint(0, 2)])
        return out

    for _ in range(20):
        old, new = put(odb, folder(0)), put(odb, folder(0))
        a = {p: (e.type, e.id, e.size) for p, e in walk_tree(odb, old)}
        b = {p: (e.type, e.id, e.size) for p, e in walk_tree(odb, new)}
        expected = {p: (a.get(p), b.get(p)) for p in a.keys() | b.keys()
                    if a.get(p) != b.get(p)}
        assert diff(odb, old, new) == expected


def raw_tree(odb: MemoryObjectDatabase, *lines: str) -> str:
    return odb.write(TREE_HEADER + "".join(line + "\n" for line in lines).encode())


@pytest.mark.parametrize("name", ["..", ".", "", "a/b"])
def test_a_name_that_leaves_the_folder_is_refused(name: str) -> None:
    odb = MemoryObjectDatabase()
    blob = odb.write(b"evil")
    old = raw_tree(odb, f"blob {blob} 4\tok")
    new = raw_tree(odb, f"blob {blob} 4\tok", f"blob {blob} 4\t{name}")
    with pytest.raises(InvalidObject, match=f"object {new} is not a tree: tree line 3"):
        list(diff_trees(odb, old, new))
    with pytest.raises(InvalidObject, match=f"object {new} is not a tree"):
        list(diff_trees(odb, None, new))


@pytest.mark.parametrize("line", [
    "blob {blob} 4\tx\ty",              # a tab in the name: no clean split
    "blob {short} 4\tx",                # not a 64-hex-digit id
    "blob {upper} 4\tx",                # upper-case hex is not an id
    "link {blob} 4\tx",                 # unknown type
    "blob {blob} 04\tx",                # size with a leading zero
])
def test_a_malformed_line_is_refused(line: str) -> None:
    odb = MemoryObjectDatabase()
    blob = odb.write(b"evil")
    new = raw_tree(odb, line.format(blob=blob, short=blob[:60], upper=blob.upper()))
    with pytest.raises(InvalidObject, match=f"object {new} is not a tree"):
        list(diff_trees(odb, put(odb, {"x": b"x"}), new))


def test_two_entries_with_one_name_are_refused() -> None:
    odb = MemoryObjectDatabase()
    one, two = odb.write(b"1"), odb.write(b"2")
    new = raw_tree(odb, f"blob {one} 1\tx", f"blob {two} 1\tx")
    with pytest.raises(InvalidObject, match="two entries are named 'x'"):
        list(diff_trees(odb, put(odb, {"y": b"y"}), new))


def test_not_a_tree_and_a_missing_tree() -> None:
    odb = MemoryObjectDatabase()
    blob = odb.write(b"just bytes\n")
    with pytest.raises(InvalidObject, match=f"object {blob} is not a tree"):
        list(diff_trees(odb, None, blob))
    cut = odb.write(TREE_HEADER + f"blob {blob} 11\tx".encode())
    with pytest.raises(InvalidObject, match="does not end with a newline"):
        list(diff_trees(odb, None, cut))
    gone = "ab" * 32
    with pytest.raises(MissingObject):
        list(diff_trees(odb, put(odb, {"x": b"x"}), gone))


def test_want_fetches_a_level_before_it_is_read() -> None:
    """``want`` is how a caller brings trees the store lacks: each level's trees are asked
    for before any of them is read."""
    remote = MemoryObjectDatabase()
    old = put(remote, {"d": {"e": {"f": b"old"}}, "k": b"k"})
    new = put(remote, {"d": {"e": {"f": b"new"}}, "k": b"k"})
    local = MemoryObjectDatabase()

    def fetch(ids: list[str]) -> None:
        for oid in ids:
            local.write(remote.get(oid))

    found = list(diff_trees(local, old, new, want=fetch))
    assert found == [("d/e/f", side(remote, b"old"), side(remote, b"new"))]
    assert not local.has(remote.write(b"k"))  # file bytes are never asked for
