"""``ama status`` and the tree the index remembers: an upload records it, staging a change
forgets it, and status trusts it only while it is the tree of the version HEAD names."""

from __future__ import annotations

import os

from ama.porcelain.add import add
from ama.porcelain.asset import Asset, locked_index
from ama.porcelain.config import Config
from ama.porcelain.discard import discard
from ama.porcelain.info import connect
from ama.porcelain.status import status
from ama.porcelain.upload import upload
from tests.unit.porcelain.conftest import commit, write


def test_an_upload_remembers_its_tree_until_a_change_is_staged(asset: Asset) -> None:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    write(asset.root, {"a.txt": "alpha", "d/b.txt": "beta"})
    add(asset, ["."])
    assert asset.index().tree is None
    upload(asset, "first")
    asset = Asset.open(asset.root)
    assert asset.index().tree == asset.committed_tree()
    assert status(asset).uploaded and status(asset).clean

    write(asset.root, {"a.txt": "changed"})
    add(asset, ["a.txt"])
    assert asset.index().tree is None
    s = status(asset)
    assert s.staged_modified == ["a.txt"] and not s.uploaded

    discard(asset, None, staged=True)  # back to the uploaded bytes, by content
    assert status(asset).uploaded
    # An upload with nothing new makes no version but remembers the tree again.
    assert not upload(asset, "again").created
    assert Asset.open(asset.root).index().tree == asset.committed_tree()


def test_a_remembered_tree_of_another_version_is_not_trusted(asset: Asset) -> None:
    write(asset.root, {"a.txt": "alpha", "b.txt": "beta"})
    add(asset, ["."])
    commit(asset)
    first_tree = asset.committed_tree()
    with locked_index(asset) as index:
        index.tree = first_tree
        index.write()
    # HEAD moves to a version with one more file, behind the index's back.
    write(asset.root, {"c.txt": "gamma"})
    add(asset, ["c.txt"])
    commit(asset, "0.0.1")
    with locked_index(asset) as index:
        index.remove("c.txt")
        index.tree = first_tree  # stale: the files of 0.0.0
        index.write()
    asset = Asset.open(asset.root)
    s = status(asset)
    assert s.staged_deleted == ["c.txt"] and s.untracked == ["c.txt"]


def test_a_staged_file_replaced_by_a_folder(asset: Asset) -> None:
    write(asset.root, {"x": "file", "y": "kept"})
    add(asset, ["."])
    commit(asset)
    os.unlink(asset.root / "x")
    write(asset.root, {"x/inner.txt": "now a folder"})
    s = status(asset)
    assert s.deleted == ["x"]
    assert s.untracked == ["x/inner.txt"]
    assert s.modified == []
