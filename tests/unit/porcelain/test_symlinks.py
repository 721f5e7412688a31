"""Symbolic links as content: staged as links when they stay inside the asset, refused (or
followed, or skipped) when they leave it, and compared by their target."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.checkout import checkout
from ama.plumbing.graph import write_tree
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.worktree import UnsupportedFiles
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.diff import diff
from ama.porcelain.status import status
from tests.unit.porcelain.conftest import commit, write


def zoneinfo(root: Path) -> None:
    """A tree like the time-zone database: relative links to files and to a folder, a
    chain of links and a dangling one."""
    write(root, {"zoneinfo/Europe/Paris": "CET\n", "zoneinfo/Etc/UTC": "UTC\n"})
    os.symlink("Paris", root / "zoneinfo/Europe/Monaco")
    os.symlink("../Etc/UTC", root / "zoneinfo/Europe/Zulu")
    os.symlink("Europe/Zulu", root / "zoneinfo/Zulu")  # a link to a link
    os.symlink("zoneinfo", root / "posix")  # a folder
    os.symlink("../gone", root / "zoneinfo/Dangling")


LINKS = {"posix": "zoneinfo", "zoneinfo/Dangling": "../gone",
         "zoneinfo/Europe/Monaco": "Paris", "zoneinfo/Europe/Zulu": "../Etc/UTC",
         "zoneinfo/Zulu": "Europe/Zulu"}


def test_add_records_links_inside_the_asset_as_links(asset: Asset) -> None:
    zoneinfo(asset.root)
    result = add(asset, ["."])
    assert result.new == sorted([*LINKS, "zoneinfo/Etc/UTC", "zoneinfo/Europe/Paris"])
    index = asset.index()
    for path, target in LINKS.items():
        entry = index.get(path)
        assert (entry.type, entry.id, entry.size) == ("link", hash_bytes(target.encode()),
                                                      len(target))
        assert asset.odb.get(entry.id) == target.encode()
    assert index.get("zoneinfo/Europe/Paris").type == "blob"
    assert "posix/Europe/Paris" not in index  # a link to a folder is not entered
    now = status(asset)
    assert (now.modified, now.deleted, now.untracked) == ([], [], [])
    commit(asset)
    # A new target is a modification; a link made a file is one too.
    os.unlink(asset.root / "zoneinfo/Europe/Monaco")
    os.symlink("../Etc/UTC", asset.root / "zoneinfo/Europe/Monaco")
    assert status(asset).modified == ["zoneinfo/Europe/Monaco"]
    assert [(c.path, c.status) for c in diff(asset, [])] == [
        ("zoneinfo/Europe/Monaco", "M")]
    again = add(asset, ["."])
    assert again.modified == ["zoneinfo/Europe/Monaco"]
    assert asset.index().get("zoneinfo/Europe/Monaco").id == hash_bytes(b"../Etc/UTC")


def test_a_version_with_links_checks_out_byte_and_link_identical(asset: Asset,
                                                                 tmp_path: Path) -> None:
    zoneinfo(asset.root)
    add(asset, ["."])
    commit(asset)
    index = asset.index()
    tree = write_tree(asset.odb, index.entries.values())
    assert asset.odb.get(tree).startswith(b"ama-tree 2\n")  # the root holds a link
    elsewhere = tmp_path / "copy"
    from ama.plumbing.index import Index

    fresh = Index(tmp_path / "copy-index")
    for entry in index.entries.values():
        fresh.add(entry._replace(mtime_ns=0, ino=0))
    checkout(asset.odb, fresh, elsewhere, list(fresh.entries))
    for path, target in LINKS.items():
        assert os.readlink(elsewhere / path) == target
    assert (elsewhere / "posix/Europe/Monaco").read_bytes() == b"CET\n"
    assert (elsewhere / "zoneinfo/Zulu").read_bytes() == b"UTC\n"


@pytest.mark.parametrize("target", ["/etc/hostname", "../../outside"])
def test_a_link_leaving_the_asset_is_refused_naming_both_flags(asset: Asset,
                                                               target: str) -> None:
    write(asset.root, {"good.txt": "g"})
    (asset.root.parent / "outside").write_text("outside\n")
    os.makedirs(asset.root / "d")
    os.symlink(target, asset.root / "d/escape")
    with pytest.raises(UnsupportedFiles) as e:
        add(asset, ["."])
    assert [p for p, _ in e.value.problems] == ["d/escape"]
    said = e.value.problems[0][1]
    assert "--follow-symlinks" in said and "--skip-symlinks" in said
    assert len(asset.index()) == 0


def test_follow_stores_the_target_and_skip_leaves_links_out(asset: Asset) -> None:
    (asset.root.parent / "outside").write_text("outside\n")
    write(asset.root, {"a.txt": "a"})
    os.symlink("../outside", asset.root / "escape")
    os.symlink("a.txt", asset.root / "inside")
    skipped = add(asset, ["."], links="skip")
    assert (skipped.new, skipped.skipped) == (["a.txt"], ["escape", "inside"])
    followed = add(asset, ["."], links="follow")
    assert followed.new == ["escape", "inside"]
    index = asset.index()
    assert (index.get("escape").type, index.get("escape").id) == (
        "blob", hash_bytes(b"outside\n"))
    assert index.get("inside").type == "link"  # inside the asset: still a link
    assert status(asset).modified == []


def test_switch_never_deletes_or_writes_through_a_folder_made_a_link(asset: Asset,
                                                                     tmp_path: Path) -> None:
    from ama.porcelain.config import Config
    from ama.porcelain.info import connect
    from ama.porcelain.switch import switch
    from ama.porcelain.upload import upload

    connect(Config.open()).transport.put_class(connect(Config.open()).project, "ml-models")
    write(asset.root, {"a/f": "mine\n", "keep.txt": "k"})
    add(asset, ["."])
    upload(asset, "first")
    os.unlink(asset.root / "a/f")
    os.rmdir(asset.root / "a")
    write(asset.root, {"b.txt": "b"})
    add(asset, ["."])
    upload(asset, "second")
    # Something plants a link where the folder of the first version goes.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("not yours\n")
    os.symlink(outside, asset.root / "a")
    switch(asset, "0.0.0", force=True)
    assert not (asset.root / "a").is_symlink()
    assert (asset.root / "a/f").read_text() == "mine\n"
    assert (outside / "f").read_text() == "not yours\n"
    # And back: the version's own file is deleted, never one reached through a link.
    os.unlink(asset.root / "a/f")
    os.rmdir(asset.root / "a")
    os.symlink(outside, asset.root / "a")
    switch(asset, "0.0.1", force=True)
    assert (outside / "f").read_text() == "not yours\n"


def test_remove_deletes_a_link_not_its_target_nor_through_one(asset: Asset,
                                                              tmp_path: Path) -> None:
    from ama.porcelain.remove import remove

    zoneinfo(asset.root)
    write(asset.root, {"d/f": "mine\n"})
    add(asset, ["."])
    removed = remove(asset, ["posix", "zoneinfo/Europe/Monaco"])
    assert removed.deleted == ["posix", "zoneinfo/Europe/Monaco"]
    assert not os.path.lexists(asset.root / "posix")
    assert (asset.root / "zoneinfo/Europe/Paris").read_text() == "CET\n"
    # A staged folder made a link to elsewhere: its files there are not this asset's.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "f").write_text("not yours\n")
    os.unlink(asset.root / "d/f")
    os.rmdir(asset.root / "d")
    os.symlink(outside, asset.root / "d")
    remove(asset, ["d/f"], force=True)
    assert (outside / "f").read_text() == "not yours\n"


@pytest.mark.parametrize("header, kind", [(b"ama-tree 1\n", b"link"), (b"ama-tree 2\n", b"blob")])
def test_reading_a_version_refuses_a_tree_whose_header_hides_or_fakes_links(
        header: bytes, kind: bytes) -> None:
    from ama.plumbing.objects import InvalidObject
    from ama.plumbing.odb import MemoryObjectDatabase
    from ama.porcelain.asset import flatten_tree_ids

    odb = MemoryObjectDatabase()
    blob = odb.write(b"x")
    tree = odb.write(header + kind + b" " + blob.encode() + b" 1\tx\n")
    with pytest.raises(InvalidObject, match="header does not match"):
        flatten_tree_ids(odb, tree)


def test_a_staged_file_made_a_link_is_a_modification_never_read_through(
        asset: Asset, tmp_path: Path) -> None:
    write(asset.root, {"data.csv": "a,b\n", "other.csv": "c\n"})
    add(asset, ["."])
    secret = tmp_path / "secret"
    secret.write_text("not for the asset\n")
    os.unlink(asset.root / "data.csv")
    os.symlink(secret, asset.root / "data.csv")
    os.unlink(asset.root / "other.csv")
    os.symlink("data.csv", asset.root / "other.csv")
    now = status(asset)
    assert now.modified == ["other.csv"]
    assert [p for p, _ in now.unsupported] == ["data.csv"]  # it leaves the asset
    with pytest.raises(UnsupportedFiles) as e:
        add(asset, ["."])
    assert [p for p, _ in e.value.problems] == ["data.csv"]
    assert not asset.odb.has(hash_bytes(b"not for the asset\n"))
    os.unlink(asset.root / "data.csv")
    write(asset.root, {"data.csv": "a,b\n"})
    assert add(asset, ["."]).modified == ["other.csv"]
    assert asset.index().get("other.csv").type == "link"
