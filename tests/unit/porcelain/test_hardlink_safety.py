"""Never silently wrong bytes under the hardlink strategy: the embedded remote keeps its own
inodes, a linked checkout checks each object before placing it, and discard never deletes
a user's file because the store object it shares was written through."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import CorruptObject, is_sealed
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.clone import clone
from ama.porcelain.config import Config
from ama.porcelain.discard import discard
from ama.porcelain.info import connect
from ama.porcelain.status import status
from ama.porcelain.upload import upload
from tests.unit.porcelain.conftest import write

BIG = 300_000  # above the size that copies through the kernel and hashes by mmap


def uploaded(asset: Asset) -> Asset:
    """``asset`` under the hardlink strategy, with a few files added and uploaded to the
    embedded remote."""
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    asset.config.set("link.strategy", "hardlink")
    asset = Asset.open(asset.root)
    write(asset.root, {"a.txt": "alpha\n", "b.txt": "bravo, longer\n",
                       "big.bin": os.urandom(BIG)})
    add(asset, ["."])
    upload(asset, "first")
    return asset


def inodes(root: Path) -> set[int]:
    return {os.stat(os.path.join(d, n)).st_ino for d, _, names in os.walk(root)
            for n in names}


def test_the_embedded_remote_shares_no_inode_with_the_store_or_a_work_tree(
        asset: Asset, tmp_path: Path) -> None:
    asset = uploaded(asset)
    copy = clone("ml-models/1", tmp_path / "c")
    storage = inodes(asset.store.home / "remote" / "storage")
    # The big blob loose; a pack of the two small ones, the tree and the manifest.
    assert len(storage) == 2
    assert not storage & inodes(asset.store.home / "objects")
    assert not storage & (inodes(asset.root) | inodes(copy.root))
    # Written through its linked original, the store object changes, the remote's copy not.
    os.chmod(asset.root / "big.bin", 0o644)
    with open(asset.root / "big.bin", "ab") as f:
        f.write(b"appended")
    oid = asset.index().entries["big.bin"].id
    path = asset.store.home / "remote" / "storage" / "objects" / oid[:2] / oid[2:]
    assert hash_bytes(path.read_bytes()) == oid


@pytest.mark.parametrize("name", ["a.txt", "big.bin"])
def test_discard_keeps_a_linked_file_written_through_and_names_the_damage(
        asset: Asset, name: str) -> None:
    asset = uploaded(asset)
    before = (asset.root / name).read_bytes()
    os.chmod(asset.root / name, 0o644)
    with open(asset.root / name, "ab") as f:
        f.write(b"appended")
    assert status(asset).modified == [name]
    with pytest.raises(CorruptObject) as raised:
        discard(asset, [name])
    assert raised.value.oid == hash_bytes(before)
    assert (asset.root / name).read_bytes() == before + b"appended"
    assert sorted(os.listdir(asset.root)) == [".ama", "a.txt", "b.txt", "big.bin"]


def test_a_linked_checkout_refuses_swapped_sealed_objects(asset: Asset,
                                                          tmp_path: Path) -> None:
    asset = uploaded(asset)
    a, b = (asset.odb.path(asset.index().entries[n].id) for n in ("a.txt", "b.txt"))
    assert is_sealed(os.stat(a)) and is_sealed(os.stat(b))
    # Swapped by name: each keeps its sealed stat, so only its size gives it away.
    os.rename(a, tmp_path / "swap")
    os.rename(b, a)
    os.rename(tmp_path / "swap", b)
    with pytest.raises(CorruptObject) as raised:
        clone("ml-models/1", tmp_path / "c")
    assert raised.value.oid in (hash_bytes(b"alpha\n"), hash_bytes(b"bravo, longer\n"))
    placed = {p.name: p.read_bytes() for p in (tmp_path / "c").glob("*.txt")}
    assert placed.get("a.txt", b"alpha\n") == b"alpha\n"
    assert placed.get("b.txt", b"bravo, longer\n") == b"bravo, longer\n"


def test_a_linked_checkout_refuses_swapped_sealed_objects_of_one_size(
        asset: Asset, tmp_path: Path) -> None:
    asset = uploaded(asset)
    write(asset.root, {"c.txt": "charlie\n", "d.txt": "delta!!\n"})
    add(asset, ["c.txt", "d.txt"])
    upload(asset, "second")
    c, d = (asset.index().entries[n].id for n in ("c.txt", "d.txt"))
    assert c[:4] != d[:4]
    # Swapped by name, same size, each still carrying its own seal.
    os.rename(asset.odb.path(c), tmp_path / "swap")
    os.rename(asset.odb.path(d), asset.odb.path(c))
    os.rename(tmp_path / "swap", asset.odb.path(d))
    assert is_sealed(os.stat(asset.odb.path(c))) and not is_sealed(os.stat(asset.odb.path(c)), c)
    with pytest.raises(CorruptObject) as raised:
        clone("ml-models/1", tmp_path / "c")
    assert raised.value.oid in (c, d)
    for name, data in (("c.txt", b"charlie\n"), ("d.txt", b"delta!!\n")):
        placed = tmp_path / "c" / name
        assert not placed.exists() or placed.read_bytes() == data


def test_status_reports_a_linked_file_changed_through_another_link(
        asset: Asset, tmp_path: Path) -> None:
    asset = uploaded(asset)
    copy = clone("ml-models/1", tmp_path / "c")
    assert os.stat(copy.root / "a.txt").st_ino == os.stat(asset.root / "a.txt").st_ino
    os.chmod(copy.root / "a.txt", 0o644)
    with open(copy.root / "a.txt", "r+b") as f:
        f.write(b"ALPHA\n")  # same size
    assert status(asset).modified == ["a.txt"]
    assert status(copy).modified == ["a.txt"]
