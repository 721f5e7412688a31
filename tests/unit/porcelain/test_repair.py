"""Corrupt store objects with a good copy on the remote: ``ama store verify --repair`` and
``ama download -f`` fetch them again, each copy re-hashed before it replaces the corrupt one;
an object with no good copy anywhere keeps its corrupt file and is still reported."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ama.cli.main import cli
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import CorruptObject
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.clone import clone
from ama.porcelain.config import Config
from ama.porcelain.download import download
from ama.porcelain.info import connect
from ama.porcelain.store import repair, verify
from ama.porcelain.upload import upload
from tests.unit.porcelain.conftest import rewrite_stored, write

BIG = 300_000


def uploaded(asset: Asset) -> Asset:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    write(asset.root, {"a.txt": "alpha\n", "d/big.bin": os.urandom(BIG)})
    add(asset, ["."])
    upload(asset, "first")
    return asset


def damage(path: Path) -> bytes:
    """Flip the first byte of the file at ``path`` in place; return its new bytes."""
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 1
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)
    return bytes(data)


def leftovers(asset: Asset) -> list[Path]:
    return sorted((asset.store.home / "objects").rglob(".tmp-*"))


def test_store_verify_repair_fetches_good_copies(asset: Asset) -> None:
    asset = uploaded(asset)
    ids = sorted(e.id for e in asset.index().entries.values())
    for oid in ids:
        damage(asset.odb.path(oid))
    result = CliRunner().invoke(cli, ["store", "verify", "--repair", "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert sorted(c["id"] for c in answer["corrupt"]) == ids
    assert sorted(answer["repaired"]) == ids
    for oid in ids:
        assert hash_bytes(asset.odb.path(oid).read_bytes()) == oid
        assert not os.stat(asset.odb.path(oid)).st_mode & 0o222
    assert verify(asset.store).corrupt == [] and leftovers(asset) == []


def test_an_object_without_a_good_copy_keeps_its_corrupt_file(asset: Asset) -> None:
    asset = uploaded(asset)
    sent = asset.index().entries["a.txt"].id
    write(asset.root, {"new.txt": "never uploaded\n"})
    add(asset, ["new.txt"])
    local = asset.index().entries["new.txt"].id
    bad_local = damage(asset.odb.path(local))
    bad_sent = damage(asset.odb.path(sent))
    # The remote's copy of a.txt is damaged too: no good copy of it anywhere.
    rewrite_stored(asset.store.home / "remote" / "storage", sent,
                   lambda data: bytes([data[0] ^ 1]) + data[1:])
    assert repair(asset.store, [local, sent], Config.open()) == []
    assert asset.odb.path(local).read_bytes() == bad_local
    assert asset.odb.path(sent).read_bytes() == bad_sent
    assert leftovers(asset) == []
    result = CliRunner().invoke(cli, ["store", "verify", "--repair"])
    assert result.exit_code == 1
    assert "2 corrupt object(s) in the store" in result.stderr


def test_download_force_fetches_a_corrupt_object_again(asset: Asset, tmp_path: Path) -> None:
    asset = uploaded(asset)
    copy = clone("ml-models/1", tmp_path / "c")
    for name in ("a.txt", "d/big.bin"):
        (copy.root / name).unlink()
    big = copy.index().entries["d/big.bin"].id
    damage(copy.odb.path(big))
    with pytest.raises(CorruptObject):
        download(copy)
    assert not (copy.root / "d/big.bin").exists()
    result = download(copy, force=True)
    assert result.repaired == [big]
    assert hash_bytes((copy.root / "d/big.bin").read_bytes()) == big
    assert (copy.root / "a.txt").read_bytes() == b"alpha\n"
    assert hash_bytes(copy.odb.path(big).read_bytes()) == big
    assert leftovers(copy) == []
