"""Sealed objects through the verbs: ``ama add`` and ``ama update`` with hard links seal
the files that become objects, a clone from a warm store links sealed objects and leaves an
index that ``ama status`` trusts, and ``ama store verify`` re-hashes whatever the seals say."""

from __future__ import annotations

import os
from pathlib import Path

from click.testing import CliRunner

from ama.cli.main import cli
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.odb import is_sealed
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.clone import clone
from ama.porcelain.config import Config
from ama.porcelain.info import connect
from ama.porcelain.status import status
from ama.porcelain.store import verify
from ama.porcelain.update import update
from ama.porcelain.upload import upload
from tests.unit.porcelain.conftest import write
from tests.unit.test_seal import tamper_keeping_the_seal

NS = 1_000_000_000


def hardlink(asset: Asset) -> Asset:
    asset.config.set("link.strategy", "hardlink")
    return Asset.open(asset.root)


def assert_index_trusted(asset: Asset) -> None:
    """Every entry has the file's current stat, recorded before the index was written: a
    status compares stats and reads no file."""
    index = asset.index()
    for entry in index.entries.values():
        assert entry.matches(os.stat(asset.root / entry.path)), entry.path
        assert not index.is_racy(entry), entry.path


def test_add_seals_the_files_it_links_and_records_the_sealed_stat(asset: Asset) -> None:
    asset = hardlink(asset)
    write(asset.root, {"a.txt": "alpha", "d/b.txt": "beta"})
    add(asset, ["."])
    for name, data in (("a.txt", b"alpha"), ("d/b.txt", b"beta")):
        st = os.stat(asset.root / name)
        assert st.st_ino == os.stat(asset.odb.path(hash_bytes(data))).st_ino
        assert is_sealed(st)
    assert_index_trusted(asset)
    assert not status(asset).modified


def test_update_links_changed_files_into_the_store_as_add_does(asset: Asset) -> None:
    asset = hardlink(asset)
    write(asset.root, {"a.txt": "old"})
    add(asset, ["a.txt"])
    # An editor replaces the read-only linked file with a new one.
    (asset.root / "a.txt.new").write_bytes(b"new bytes")
    os.replace(asset.root / "a.txt.new", asset.root / "a.txt")
    assert update(asset, ["a.txt"]).modified == ["a.txt"]
    st = os.stat(asset.root / "a.txt")
    stored = os.stat(asset.odb.path(hash_bytes(b"new bytes")))
    assert (st.st_ino, st.st_mode & 0o777) == (stored.st_ino, 0o444)
    assert is_sealed(stored)
    assert asset.odb.get(hash_bytes(b"old")) == b"old"  # the old object is untouched
    assert_index_trusted(asset)


def uploaded(asset: Asset) -> Asset:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    asset = hardlink(asset)
    write(asset.root, {f"d{i % 3}/f{i}.bin": f"file {i}\n" * (i + 1) for i in range(40)})
    add(asset, ["."])
    upload(asset, "first")
    return asset


def test_a_clone_from_a_warm_store_links_sealed_objects_unread(asset: Asset,
                                                               tmp_path: Path) -> None:
    asset = uploaded(asset)
    victim = asset.odb.path(asset.index().entries["d1/f1.bin"].id)
    tamper_keeping_the_seal(victim, b"FILE 1\nFILE 1\n")  # same size, sealed stat
    copy = clone("ml-models/1", tmp_path / "c")
    assert (copy.root / "d1/f1.bin").read_bytes() == b"FILE 1\nFILE 1\n"  # linked unread
    assert_index_trusted(copy)
    assert not status(copy).modified
    # store verify re-hashes every object: it finds the one changed behind its seal.
    oid = asset.index().entries["d1/f1.bin"].id
    found = verify(copy.store).corrupt
    assert [(c["id"], c["path"]) for c in found] == [(oid, str(victim))]
    result = CliRunner().invoke(cli, ["store", "verify"])
    assert result.exit_code == 1
    assert result.stdout.startswith(f"corrupt\t{oid}\t{victim}: ")


def test_a_clone_seals_the_objects_it_had_to_hash(asset: Asset, tmp_path: Path) -> None:
    asset = uploaded(asset)
    blobs = [e.id for e in asset.index().entries.values()]
    for oid in blobs:  # as objects stored before seals existed
        os.utime(asset.odb.path(oid), ns=(NS, NS))
    copy = clone("ml-models/1", tmp_path / "c")
    assert all(is_sealed(os.stat(copy.odb.path(oid))) for oid in blobs)
    assert_index_trusted(copy)
    result = status(copy)
    assert not result.modified and not result.has_staged
