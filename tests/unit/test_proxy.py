"""Proxy descriptors and the trees that hold proxy files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ama.plumbing.graph import tree_entries
from ama.plumbing.hashing import EMPTY_BLOB_ID, hash_bytes
from ama.plumbing.index import read_tree_into
from ama.plumbing.objects import InvalidObject, Tree, TreeEntry, object_type
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.proxy import (
    ProxyDescriptor,
    ProxyNotPlaceable,
    file_descriptor,
    parse_descriptor,
)

CONTENT_ID = hash_bytes(b"content")


def test_a_descriptor_is_canonical_json_and_round_trips() -> None:
    descriptor = ProxyDescriptor("s3://bucket/data/x.bin", 7, CONTENT_ID, '"etag-1"', "v3")
    data = descriptor.serialize()
    assert data == (b'{"etag":"\\"etag-1\\"","format":"ama-proxy/1","id":"' + CONTENT_ID.encode()
                    + b'","size":7,"url":"s3://bucket/data/x.bin","version":"v3"}')
    assert parse_descriptor(data) == descriptor


@pytest.mark.parametrize("url, said", [
    ("file:///etc/shadow", "scheme 'file'"),
    ("FILE:///etc/shadow", "scheme 'file'"),
    ("ftp://example.org/x", "scheme 'ftp'"),
    ("/etc/passwd", "scheme '(none)'"),
    ("https:///x", "names no host"),
    ("https://me:pw@example.org/x", "holds credentials"),
    ("gs://bucket/", "is not gs://BUCKET/KEY"),
    ("s3://bucket/k?versionId=1", "is not s3://BUCKET/KEY"),
    ("https://example.org/a b", "space or a control character"),
    ("https://[::1/x", "does not parse"),
    ("https://example.org/\x9b2J", "space or a control character"),
])
def test_a_descriptor_naming_a_source_no_client_fetches_is_refused(url: str,
                                                                   said: str) -> None:
    with pytest.raises(InvalidObject, match="proxy descriptor") as refused:
        ProxyDescriptor(url, 7, CONTENT_ID)
    assert said in refused.value.message


@pytest.mark.parametrize("data, said", [
    (b'{"etag":"","format":"ama-proxy/1","id":"' + CONTENT_ID.encode()
     + b'","size":7,"url":"s3://b/k"}', "missing 'version'"),
    (b'{"format":"ama-proxy/2"}', "format is not"),
    (b'{"etag":"", "format":"ama-proxy/1","id":"' + CONTENT_ID.encode()
     + b'","size":7,"url":"s3://b/k","version":""}', "canonical"),
    (b"\xff", "not a proxy descriptor"),
    (b" " * 9000, "longer than"),
])
def test_a_broken_descriptor_is_refused(data: bytes, said: str) -> None:
    with pytest.raises(InvalidObject) as refused:
        parse_descriptor(data)
    assert said in refused.value.message


@pytest.mark.parametrize("etag, version", [
    ('"1"\r"2"', ""), ("\x1b[2J", ""), ('"1"', "\x9b2J"), ('"1"', "v\x7f"),
])
def test_a_descriptor_whose_etag_or_version_would_drive_a_terminal_is_refused(
        etag: str, version: str) -> None:
    with pytest.raises(InvalidObject, match="without control characters"):
        ProxyDescriptor("https://example.org/x", 7, CONTENT_ID, etag, version)


def test_a_descriptor_over_the_largest_object_is_refused() -> None:
    data = ProxyDescriptor("gs://b/k", 11, CONTENT_ID).serialize()
    assert parse_descriptor(data, max_size=11).size == 11
    with pytest.raises(InvalidObject, match="over the 10 bytes"):
        parse_descriptor(data, max_size=10)


def test_a_tree_holding_a_proxy_is_version_3_and_only_it() -> None:
    descriptor = ProxyDescriptor("s3://b/k", 7, CONTENT_ID).serialize()
    proxy = TreeEntry("proxy", hash_bytes(descriptor), 7, "x.bin")
    link = TreeEntry("link", hash_bytes(b"x.bin"), 5, "y")
    tree = Tree.of([proxy, link, TreeEntry("blob", EMPTY_BLOB_ID, 0, "z")])
    data = tree.serialize()
    assert data.startswith(b"ama-tree 3\nproxy ")
    assert Tree.deserialize(data) == tree
    assert object_type(data) == "tree"
    assert Tree.of([link]).serialize().startswith(b"ama-tree 2\n")


@pytest.mark.parametrize("data", [
    b"ama-tree 1\nproxy " + b"a" * 64 + b" 1\tx\n",
    b"ama-tree 2\nproxy " + b"a" * 64 + b" 1\tx\n",
    b"ama-tree 3\nlink " + b"a" * 64 + b" 1\tx\n",
    b"ama-tree 3\nblob " + b"a" * 64 + b" 1\tx\n",
])
def test_a_tree_whose_header_does_not_match_its_proxies_is_refused(data: bytes,
                                                                   tmp_path: Path) -> None:
    with pytest.raises(InvalidObject, match="header does not match"):
        Tree.deserialize(data)
    odb = FileObjectDatabase(tmp_path / "objects")
    oid = odb.write(data)
    with pytest.raises(InvalidObject, match="header does not match"):
        tree_entries(odb, oid)


def test_a_proxy_is_never_staged_as_its_descriptor(tmp_path: Path) -> None:
    odb = FileObjectDatabase(tmp_path / "objects")
    descriptor = odb.write(ProxyDescriptor("s3://b/k", 7, CONTENT_ID).serialize())
    tree = odb.write(Tree.of([TreeEntry("proxy", descriptor, 7, "x.bin")]).serialize())
    assert tree_entries(odb, tree) == [("proxy", descriptor, 7, "x.bin")]
    with pytest.raises(ProxyNotPlaceable, match="proxy files"):
        read_tree_into(tmp_path / "index", odb, tree)
    assert not (tmp_path / "index").exists()


def test_staged_proxies_survive_the_index_and_make_proxy_entries(tmp_path: Path) -> None:
    from ama.plumbing.graph import write_tree
    from ama.plumbing.index import Index, IndexEntry

    odb = FileObjectDatabase(tmp_path / "objects")
    content = odb.write(b"content")
    descriptor = odb.write(ProxyDescriptor("s3://b/k", 7, content).serialize())
    index = Index(tmp_path / "index", {"x.bin": IndexEntry("x.bin", content, 7),
                                       "y.bin": IndexEntry("y.bin", content, 7)})
    index.proxies["x.bin"] = (content, descriptor)
    index.proxies["gone.bin"] = (content, descriptor)  # not staged: dropped
    index.write()
    assert (tmp_path / "index").read_bytes()[4:8] == (4).to_bytes(4, "little")
    read = Index.read(tmp_path / "index")
    assert read.proxies == {"x.bin": (content, descriptor)}
    tree = write_tree(odb, read.entries.values(), read.staged_proxies())
    assert tree_entries(odb, tree) == [("proxy", descriptor, 7, "x.bin"),
                                       ("blob", content, 7, "y.bin")]
    # Staged anew with other bytes, it is a plain file, and the index a version 2 one.
    other = odb.write(b"changed")
    read.add(IndexEntry("x.bin", other, 7))
    assert read.staged_proxies() == {}
    read.write()
    assert Index.read(tmp_path / "index").proxies == {}
    assert (tmp_path / "index").read_bytes()[4:8] == (2).to_bytes(4, "little")
    tree = write_tree(odb, read.entries.values(), read.staged_proxies())
    assert [e[0] for e in tree_entries(odb, tree)] == ["blob", "blob"]


def test_a_hostile_descriptor_in_a_version_is_refused_before_anything_is_fetched(
        tmp_path: Path) -> None:
    from ama.plumbing.objects import Author, Manifest
    from ama.porcelain.download import version_files

    odb = FileObjectDatabase(tmp_path / "objects")
    hostile = odb.write(b'{"etag":"","format":"ama-proxy/1","id":"' + CONTENT_ID.encode()
                        + b'","size":7,"url":"file:///etc/shadow","version":""}')
    tree = odb.write(Tree.of([TreeEntry("proxy", hostile, 7, "shadow")]).serialize())
    manifest = odb.write(Manifest(tree=tree, author=Author("T", "t@example.org"),
                                  created="2026-11-27T16:00:00Z").serialize())
    with pytest.raises(InvalidObject, match="shadow: proxy descriptor: its url "
                                            "'file:///etc/shadow' has the scheme 'file'"):
        version_files(odb, manifest, proxies={})
    # A caller that does not fetch proxies refuses any.
    with pytest.raises(ProxyNotPlaceable):
        version_files(odb, manifest)


def test_a_tree_holding_a_proxy_and_a_link_flattens(tmp_path: Path) -> None:
    from ama.porcelain.asset import flatten_tree_ids

    odb = FileObjectDatabase(tmp_path / "objects")
    descriptor = odb.write(ProxyDescriptor("s3://b/k", 7, CONTENT_ID).serialize())
    target = odb.write(b"x.bin")
    sub = odb.write(Tree.of([TreeEntry("proxy", descriptor, 7, "x.bin"),
                             TreeEntry("link", target, 5, "y")]).serialize())
    root = odb.write(Tree.of([TreeEntry("tree", sub, 12, "d")]).serialize())
    assert flatten_tree_ids(odb, root) == {"d/x.bin": ("proxy", descriptor),
                                           "d/y": ("link", target)}


def test_a_proxy_files_descriptor_must_describe_the_size_its_tree_entry_says() -> None:
    # What clone, switch and the Python API read before they fetch from a source: a
    # remote that let a version through whose tree and descriptor disagree is named.
    data = ProxyDescriptor("s3://bucket/data/x.bin", 7, CONTENT_ID, '"etag-1"', "v3").serialize()
    assert file_descriptor(data, "data/x.bin", 7).size == 7
    with pytest.raises(InvalidObject, match=r"data/x.bin: its descriptor says 7 bytes, its tree 8"):
        file_descriptor(data, "data/x.bin", 8)
    with pytest.raises(InvalidObject, match=r"^data/x.bin: not a proxy descriptor"):
        file_descriptor(b"{}", "data/x.bin", 7)
