"""Trees and manifests: golden ids, round trips, and every format rule of docs/design.md §2."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from blake3 import blake3

from ama.plumbing.errors import BadInput
from ama.plumbing.hashing import EMPTY_BLOB_ID, hash_bytes
from ama.plumbing.objects import (
    Author,
    Input,
    InvalidName,
    InvalidObject,
    Manifest,
    Tree,
    TreeEntry,
    UnsafeLink,
    check_links,
    check_name,
    link_problem,
    name_problem,
    object_type,
)

HELLO_ID = "8e4c7c1b99dbfd50e7a95185fead5ee1448fa904a2fdd778eaf5f2dbfd629a99"  # b"hello\n"
RUN_ID = "4b694fa6468140836e2f43625aca1150ec72032dc23a12e13416ca026c647ef3"  # the script below
RUN_BYTES = b"#!/bin/sh\necho hi\n"
SUB_ID = "271bfe4688a3db29c466b7da4549f3b0f8dbab69e36b8c9fd04b3d9a6f494a0f"
ROOT_ID = "cb10e03ea6baf52007b00c8ea552274cc3537b8bb49b24b37c48ab68c6398f26"
MANIFEST_ID = "795d6f0110fbc5cf043809db22b570e3f7dd1e7a631c966cf61bd56d583221d8"

ROOT_BYTES = (
    b"ama-tree 1\n"
    b"blob af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262 0\tempty\n"
    b"exec 4b694fa6468140836e2f43625aca1150ec72032dc23a12e13416ca026c647ef3 18\trun.sh\n"
    b"tree 271bfe4688a3db29c466b7da4549f3b0f8dbab69e36b8c9fd04b3d9a6f494a0f 6\tsub\n"
)
MANIFEST_BYTES = (
    b'{"author":{"email":"ada@example.org","name":"Ada"},"created":"2026-11-27T16:00:00Z",'
    b'"format":"ama-manifest/1","inputs":[],"message":"first\\n","metadata":{},"parents":[],'
    b'"tree":"cb10e03ea6baf52007b00c8ea552274cc3537b8bb49b24b37c48ab68c6398f26"}'
)
OTHER = "1" * 64
ANOTHER = "2" * 64


def golden_root() -> Tree:
    sub = Tree((TreeEntry("blob", HELLO_ID, 6, "hello.txt"),))
    return Tree.of([
        TreeEntry("tree", hash_bytes(sub.serialize()), sub.size, "sub"),
        TreeEntry("exec", hash_bytes(RUN_BYTES), len(RUN_BYTES), "run.sh"),
        TreeEntry("blob", EMPTY_BLOB_ID, 0, "empty"),
    ])


def golden_manifest() -> Manifest:
    return Manifest.create(ROOT_ID, Author("Ada", "ada@example.org"),
                           datetime(2026, 11, 27, 16, 0, tzinfo=timezone.utc), "first\n")


# -- golden ids ----------------------------------------------------------------------------

def test_empty_blob_id_is_blake3_of_nothing() -> None:
    assert EMPTY_BLOB_ID == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    assert hash_bytes(b"") == EMPTY_BLOB_ID
    assert blake3(b"").hexdigest() == EMPTY_BLOB_ID


def test_known_blob_ids() -> None:
    assert hash_bytes(b"hello\n") == HELLO_ID
    assert hash_bytes(RUN_BYTES) == RUN_ID


def test_known_tree_has_pinned_bytes_and_id() -> None:
    sub = Tree((TreeEntry("blob", HELLO_ID, 6, "hello.txt"),))
    assert sub.serialize() == b"ama-tree 1\nblob " + HELLO_ID.encode() + b" 6\thello.txt\n"
    assert hash_bytes(sub.serialize()) == SUB_ID
    root = golden_root()
    assert root.serialize() == ROOT_BYTES
    assert hash_bytes(root.serialize()) == ROOT_ID
    assert root.size == 24


def test_known_manifest_has_pinned_bytes_and_id() -> None:
    manifest = golden_manifest()
    assert manifest.serialize() == MANIFEST_BYTES
    assert hash_bytes(manifest.serialize()) == MANIFEST_ID


def test_empty_tree_is_just_the_header() -> None:
    assert Tree().serialize() == b"ama-tree 1\n"
    assert Tree.deserialize(b"ama-tree 1\n") == Tree()


# -- round trips ---------------------------------------------------------------------------

def test_tree_entry_round_trips_through_a_tree() -> None:
    entry = TreeEntry("exec", RUN_ID, 18, "run.sh")
    assert entry.serialize() == f"exec {RUN_ID} 18\trun.sh\n".encode()
    assert Tree.deserialize(b"ama-tree 1\n" + entry.serialize()).entries == (entry,)


def test_tree_round_trips() -> None:
    root = golden_root()
    assert Tree.deserialize(root.serialize()) == root
    assert Tree.deserialize(ROOT_BYTES).serialize() == ROOT_BYTES


def test_tree_sorts_by_utf8_bytes_not_by_code_points_of_python_strings() -> None:
    # U+FF5E sorts after U+1F600 in UTF-16 but before it in UTF-8 bytes (and code points);
    # "B" < "a" in bytes; "a" < "a.txt" < "a0".
    names = ["\U0001f600", "\uff5e", "a0", "a", "B", "a.txt", "é"]
    tree = Tree.of([TreeEntry("blob", OTHER, 1, n) for n in names])
    assert [e.name for e in tree.entries] == sorted(names, key=lambda n: n.encode())
    assert Tree.deserialize(tree.serialize()) == tree


def test_manifest_round_trips_with_every_field() -> None:
    manifest = Manifest.create(
        ROOT_ID, Author("Zoë", "z@example.org"),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "retrained ✓",
        parents=[OTHER, ANOTHER],
        inputs=[Input(ANOTHER, "models/2/0.1.0", "base"),
                Input(OTHER, "imagenet/3/0.0.1", "training-data")],
        metadata={"b": [1, 2.5, None, True], "a": {"nested": "ü"}},
    )
    data = manifest.serialize()
    assert Manifest.deserialize(data) == manifest
    doc = json.loads(data)
    assert [i["name"] for i in doc["inputs"]] == ["imagenet/3/0.0.1", "models/2/0.1.0"]
    assert doc["parents"] == [OTHER, ANOTHER]  # parent order is meaningful, kept as given
    assert "ü".encode() in data  # UTF-8, not \u escapes
    assert data == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode()


def test_manifest_time_is_converted_to_utc() -> None:
    from datetime import timedelta

    moment = datetime(2026, 11, 27, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    assert Manifest.create(ROOT_ID, Author("a", "b"), moment).created == "2026-11-27T16:00:00Z"


def test_object_type_tells_the_three_kinds_apart() -> None:
    assert object_type(ROOT_BYTES) == "tree"
    assert object_type(MANIFEST_BYTES) == "manifest"
    assert object_type(b"hello\n") == "blob"
    # A file that merely starts like a tree or manifest is a blob.
    assert object_type(b"ama-tree 1\nnot an entry\n") == "blob"
    assert object_type(MANIFEST_BYTES[:-1] + b" }") == "blob"


# -- names ---------------------------------------------------------------------------------

BAD_NAMES = [
    ("", "empty"),
    (".", "'.'"),
    ("..", "'..'"),
    ("a/b", "'/'"),
    ("a\0b", "'\\x00'"),
    ("a\nb", "'\\n'"),
    ("a\tb", "'\\t'"),
    ("a\rb", "'\\r'"),
    ("x" * 256, "255"),
    ("é" * 128, "256"),  # 128 characters, 256 bytes
    ("bad\udcffname", "UTF-8"),  # what os.listdir gives for a non-UTF-8 file name
]


@pytest.mark.parametrize(("name", "said"), BAD_NAMES)
def test_invalid_names_are_refused_with_the_reason(name: str, said: str) -> None:
    problem = name_problem(name)
    assert problem is not None and said in problem
    with pytest.raises(InvalidName) as caught:
        check_name(name)
    assert repr(name) in caught.value.message
    assert caught.value.exit_code == 2
    with pytest.raises(BadInput):
        TreeEntry("blob", OTHER, 1, name)


@pytest.mark.parametrize("name", ["x" * 255, "é" * 127 + "x", "...", ".hidden", "a b",
                                  "naïve ✓", "-", "a\\b"])
def test_valid_names_are_accepted(name: str) -> None:
    assert name_problem(name) is None
    entry = TreeEntry("blob", OTHER, 1, name)
    assert Tree.deserialize(Tree((entry,)).serialize()).entries == (entry,)


# -- broken trees --------------------------------------------------------------------------

LINE = f"blob {OTHER} 5\tname".encode()


@pytest.mark.parametrize(("data", "said"), [
    (b"", "does not start with 'ama-tree 1'"),
    (b"ama-tree 4\n", "does not start"),
    (b"AMA-TREE 1\n", "does not start"),
    (b"ama-tree 1\n" + LINE, "does not end with a newline"),
    (b"ama-tree 1\n" + LINE + b"\n\n", "line 3"),
    (b"ama-tree 1\n" + LINE.replace(b"\t", b" ") + b"\n", "expected '<type> <id> <size>"),
    (b"ama-tree 1\n" + LINE.replace(b"blob ", b"blob  ") + b"\n", "expected"),
    (b"ama-tree 1\n" + LINE.replace(b"blob", b"lnk") + b"\n", "unknown type 'lnk'"),
    (b"ama-tree 1\n" + LINE.replace(OTHER.encode(), b"1" * 63) + b"\n", "not an object id"),
    (b"ama-tree 1\n" + LINE.replace(OTHER.encode(), b"A" * 64) + b"\n", "not an object id"),
    (b"ama-tree 1\n" + LINE.replace(b" 5\t", b" 05\t") + b"\n", "not a canonical number"),
    (b"ama-tree 1\n" + LINE.replace(b" 5\t", b" +5\t") + b"\n", "not a canonical number"),
    (b"ama-tree 1\n" + LINE.replace(b" 5\t", b" -5\t") + b"\n", "not a canonical number"),
    (b"ama-tree 1\n" + LINE.replace(b" 5\t", b" \t") + b"\n", "not a canonical number"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"") + b"\n", "cannot be empty"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"..") + b"\n", "'..'"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"a\rb") + b"\n", "'\\r'"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"a/b") + b"\n", "'/'"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"a\tb") + b"\n", "'\\t'"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"a\0b") + b"\n", "'\\x00'"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"x" * 256) + b"\n", "at most 255 bytes"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"\xff\xfe") + b"\n", "not valid UTF-8"),
    (b"ama-tree 1\n" + LINE.replace(b"name", b"b") + b"\n" + LINE.replace(b"name", b"a")
     + b"\n", "not sorted"),
    (b"ama-tree 1\n" + LINE + b"\n" + LINE + b"\n", "two entries named 'name'"),
])
def test_broken_tree_bytes_are_refused(data: bytes, said: str) -> None:
    with pytest.raises(InvalidObject) as caught:
        Tree.deserialize(data)
    assert said in caught.value.message
    assert caught.value.exit_code == 2
    assert object_type(data) == "blob"


def test_tree_values_enforce_the_same_rules() -> None:
    a, b = TreeEntry("blob", OTHER, 1, "a"), TreeEntry("blob", OTHER, 1, "b")
    with pytest.raises(InvalidObject, match="not sorted"):
        Tree((b, a))
    with pytest.raises(InvalidObject, match="two entries named 'a'"):
        Tree.of([a, TreeEntry("tree", ANOTHER, 3, "a")])
    with pytest.raises(InvalidObject, match="size"):
        TreeEntry("blob", OTHER, -1, "a")
    with pytest.raises(InvalidObject, match="size"):
        TreeEntry("blob", OTHER, True, "a")  # type: ignore[arg-type]
    with pytest.raises(InvalidObject, match="unknown type"):
        TreeEntry("symlink", OTHER, 1, "a")


# -- broken manifests ----------------------------------------------------------------------

def _doc() -> dict:
    return json.loads(MANIFEST_BYTES)


def _canon(doc: object) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _with(**changes: object) -> bytes:
    doc = _doc()
    doc.update(changes)
    return _canon(doc)


def _without(key: str) -> bytes:
    doc = _doc()
    del doc[key]
    return _canon(doc)


@pytest.mark.parametrize(("data", "said"), [
    (json.dumps(_doc(), sort_keys=True).encode(), "canonical form"),  # spaces after , and :
    (json.dumps(dict(reversed(_doc().items())), separators=(",", ":")).encode(),
     "canonical form"),  # keys unsorted
    (MANIFEST_BYTES + b"\n", "canonical form"),
    (_with(message="caf\u00e9").replace("é".encode(), b"\\u00e9"), "canonical form"),
    (_with(metadata={"x": 1}).replace(b'"x":1', b'"x":NaN'), "NaN"),
    (_with(metadata={"x": 1}).replace(b'"x":1', b'"x":Infinity'), "Infinity"),
    (_with(metadata={"x": 1}).replace(b'"x":1', b'"x":-Infinity'), "Infinity"),
    (_without("message"), "missing 'message'"),
    (_without("tree"), "missing 'tree'"),
    (_with(extra=1), "unknown 'extra'"),
    (_with(format="ama-manifest/2"), "format is not 'ama-manifest/1'"),
    (_without("format"), "format"),
    (_with(created="2026-11-27 16:00:00Z"), "is not YYYY-MM-DDTHH:MM:SSZ"),
    (_with(created="2026-11-27T16:00:00+00:00"), "is not YYYY-MM-DDTHH:MM:SSZ"),
    (_with(created="2026-11-27T16:00:00.5Z"), "is not YYYY-MM-DDTHH:MM:SSZ"),
    (_with(created="2026-02-30T16:00:00Z"), "not a real date"),
    (_with(created=1700000000), "is not YYYY-MM-DDTHH:MM:SSZ"),
    (_with(tree="cb10"), "not an object id"),
    (_with(parents=[OTHER, OTHER]), "same parent twice"),
    (_with(parents=OTHER), "parents must be a list"),
    (_with(author={"name": "Ada"}), "author"),
    (_with(author={"name": "Ada", "email": 3}), "author"),
    (_with(inputs=[{"manifest": OTHER, "name": "a/1/0.0.1"}]), "input"),
    (_with(inputs=[{"manifest": OTHER, "name": "Bad Class/1/0.0.1", "label": ""}]),
     "invalid class name"),
    (_with(inputs=[{"manifest": OTHER, "name": "a/01/0.0.1", "label": ""}]),
     "invalid version name"),
    (_with(inputs=[{"manifest": OTHER, "name": "b/1/0.0.1", "label": ""},
                   {"manifest": ANOTHER, "name": "a/1/0.0.1", "label": ""}]), "not sorted"),
    (_with(metadata=[1]), "metadata must be a JSON object"),
    (_with(message=None), "message must be a string"),
    (b"[]", "not a manifest"),
    (b"\xff", "not a manifest"),
    (b"{", "not a manifest"),
])
def test_broken_manifest_bytes_are_refused(data: bytes, said: str) -> None:
    with pytest.raises(InvalidObject) as caught:
        Manifest.deserialize(data)
    assert said in caught.value.message
    assert caught.value.exit_code == 2


def test_manifest_values_refuse_nan_and_bad_ids() -> None:
    author = Author("a", "b")
    with pytest.raises(InvalidObject, match="not canonical JSON"):
        Manifest(ROOT_ID, author, "2026-11-27T16:00:00Z", metadata={"x": float("nan")})
    with pytest.raises(InvalidObject, match="parent"):
        Manifest(ROOT_ID, author, "2026-11-27T16:00:00Z", parents=("abc",))
    with pytest.raises(InvalidObject, match="same input twice"):
        Manifest(ROOT_ID, author, "2026-11-27T16:00:00Z",
                 inputs=(Input(OTHER, "a/1/0.0.1", ""), Input(OTHER, "b/1/0.0.1", "")))
    with pytest.raises(BadInput, match="invalid version"):
        Input(OTHER, "a/1/1.01.0", "x")


def test_a_tree_with_a_link_has_version_2_and_round_trips() -> None:
    target = b"../Europe/Paris"
    link = TreeEntry("link", hash_bytes(target), len(target), "Paris")
    plain = TreeEntry("blob", EMPTY_BLOB_ID, 0, "empty")
    tree = Tree.of([link, plain])
    data = tree.serialize()
    assert data == (b"ama-tree 2\n"
                    + f"link {hash_bytes(target)} 15\tParis\n".encode()
                    + f"blob {EMPTY_BLOB_ID} 0\tempty\n".encode())
    assert Tree.deserialize(data) == tree
    assert object_type(data) == "tree"
    # Without a link a tree keeps version 1, and so keeps its id.
    assert Tree.of([plain]).serialize().startswith(b"ama-tree 1\n")


@pytest.mark.parametrize("data", [
    b"ama-tree 1\nlink " + b"a" * 64 + b" 1\tx\n",  # an old header hiding a link
    b"ama-tree 2\nblob " + b"a" * 64 + b" 1\tx\n",  # a new header without one
])
def test_a_tree_whose_header_does_not_match_its_links_is_refused(data: bytes) -> None:
    with pytest.raises(InvalidObject, match="header does not match"):
        Tree.deserialize(data)
    assert object_type(data) == "blob"


@pytest.mark.parametrize("path, target", [
    ("Paris", "Europe/Paris"),
    ("Europe/Lisbon", "../WET"),
    ("posix/Europe", "../Europe"),  # a folder: recorded as a link
    ("a/b/c", "../../d"),
    ("a/dangling", "nowhere"),
    ("a/up", ".."),  # the root itself
])
def test_link_targets_inside_the_asset_are_accepted(path: str, target: str) -> None:
    assert link_problem(path, target) is None


@pytest.mark.parametrize("path, target, said", [
    ("a", "/etc/passwd", "absolute"),
    ("a", "../outside", "leaves the asset"),
    ("a/b", "../../x", "leaves the asset"),
    ("a", "b/../../x", "not normalised"),
    ("a", "./b", "not normalised"),
    ("a", "b/", "not normalised"),
    ("a", "", "empty"),
    ("a", ".ama/index", ".ama/"),
    ("a", "x\udcff", "UTF-8"),
])
def test_link_targets_leaving_the_asset_are_refused(path: str, target: str, said: str
                                                     ) -> None:
    problem = link_problem(path, target)
    assert problem is not None and said in problem
    with pytest.raises(UnsafeLink, match=path):
        check_links([(path, target), ("fine", "x")], "version 0.0.1 of tz/1")
