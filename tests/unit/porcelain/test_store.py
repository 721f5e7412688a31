from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.errors import BadInput
from ama.plumbing.hashing import hash_bytes
from ama.plumbing.store import Store
from ama.porcelain.add import add
from ama.porcelain.asset import Asset, registered
from ama.porcelain.config import Config
from ama.porcelain.store import (
    UnreadableRoot,
    clear,
    effective_strategy,
    gc,
    info,
    prune,
    set_path,
    verify,
)
from tests.unit.porcelain.conftest import commit, write


def test_gc_keeps_what_asset_dirs_history_and_uploads_need(asset: Asset) -> None:
    odb = asset.odb
    write(asset.root, {"v1": "first"})
    add(asset, ["."])
    commit(asset, "0.0.0")
    os.unlink(asset.root / "v1")
    write(asset.root, {"v2": "second"})
    add(asset, ["."])
    commit(asset, "0.0.1")  # "first" is now only in history, through the parent
    garbage = odb.write(b"nobody needs me")
    pending = odb.write(b"half uploaded")
    (asset.store.home / "uploads").mkdir()
    (asset.store.home / "uploads" / "job").write_text(pending + "\n")
    dry = gc(asset.store, dry_run=True, grace=0)
    assert dry.deleted == [garbage] and odb.has(garbage)
    assert gc(asset.store, grace=3600).deleted == []  # too recent to go
    done = gc(asset.store, grace=0)
    assert done.deleted == [garbage] and not odb.has(garbage)
    for needed in (hash_bytes(b"first"), hash_bytes(b"second"), pending, asset.head.manifest):
        assert odb.has(needed)
    # clear drops what can be fetched again: history the directory does not hold.
    cleared = clear(asset.store)
    assert hash_bytes(b"first") in cleared.deleted
    assert odb.has(hash_bytes(b"second")) and odb.has(pending)


def test_gc_keeps_the_descriptor_of_a_proxy_staged_but_not_uploaded(asset: Asset) -> None:
    from ama.plumbing.index import IndexEntry
    from ama.plumbing.proxy import ProxyDescriptor
    from ama.porcelain.asset import locked_index

    odb = asset.odb
    content = odb.write(b"content")
    descriptor = odb.write(ProxyDescriptor("s3://b/k", 7, content).serialize())
    with locked_index(asset) as index:
        index.add(IndexEntry("x.bin", content, 7))
        index.proxies["x.bin"] = (content, descriptor)
        index.write()
    assert gc(asset.store, grace=0).deleted == []
    assert odb.has(content) and odb.has(descriptor)


def test_gc_refuses_when_an_asset_dir_cannot_be_read(asset: Asset) -> None:
    garbage = asset.odb.write(b"x")
    (asset.dir.meta / "index").write_bytes(b"junk")
    with pytest.raises(UnreadableRoot, match=str(asset.root)):
        gc(asset.store, grace=0)
    assert asset.odb.has(garbage)


def test_prune_drops_vanished_directories(asset: Asset, tmp_path: Path) -> None:
    home = asset.store.home
    gone = tmp_path / "gone"
    with open(home / "worktrees", "a") as f:
        f.write(f"{gone}\n")
    assert prune(asset.store, dry_run=True).dropped == [str(gone)]
    assert gone in registered(home)
    assert prune(asset.store).dropped == [str(gone)]
    assert registered(home) == [asset.root]


def test_verify_finds_a_corrupt_object(asset: Asset) -> None:
    odb = asset.odb
    good = odb.write(b"good")
    bad = odb.write(b"bad")
    path = odb.path(bad)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    result = verify(asset.store)
    assert result.checked == result.total == 2
    assert [c["id"] for c in result.corrupt] == [bad]
    assert verify(asset.store, sample=50).checked == 1
    with pytest.raises(BadInput):
        verify(asset.store, sample=0)
    assert good


def test_info_and_moving_the_objects(asset: Asset, tmp_path: Path) -> None:
    asset.odb.write(b"123")
    before = info(asset.store, Config.open())
    assert before.objects == 1 and before.bytes == 3 and before.asset_dirs == 1
    # This filesystem (ext4 in CI) or another: auto resolves to what FICLONE allows.
    assert before.link_effective in ("reflink", "copy")
    assert effective_strategy("hardlink", asset.odb.root) == "hardlink"
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(BadInput, match="not an empty folder"):
        set_path(asset.store, tmp_path / "full")
    dest = set_path(asset.store, tmp_path / "elsewhere")
    assert (asset.store.home / "objects").resolve() == dest
    moved = Store(asset.store.home)
    assert moved.objects.get(hash_bytes(b"123")) == b"123"


def test_gc_grace_counts_from_when_an_object_entered_the_store(asset: Asset) -> None:
    # An object can enter the store with an old mtime (a hard link keeps the file's times,
    # a seal made elsewhere is in the past): its ctime says when it came, so grace keeps it.
    import time

    oid = asset.odb.write(b"shared bytes")
    old = time.time_ns() - 2 * 86400 * 10**9
    os.utime(asset.odb.path(oid), ns=(old, old))  # mtime two days ago, ctime now
    st = os.stat(asset.odb.path(oid))
    assert st.st_mtime < time.time() - 86400 < st.st_ctime
    assert gc(asset.store, grace=3600).deleted == []
    assert asset.odb.has(oid)
    assert gc(asset.store, grace=0).deleted == [oid]


def test_gc_removes_what_a_killed_download_left_once_a_week_old(asset: Asset) -> None:
    import time

    incoming = asset.store.home / "incoming"
    incoming.mkdir(exist_ok=True)
    week_old = time.time() - 7 * 86400 - 60
    left = {}
    for name, mtime in (("a" * 64 + ".partial", week_old), ("a" * 64 + ".ranges", week_old),
                        ("b" * 64 + ".partial", time.time() - 86400)):
        left[name] = incoming / name
        left[name].write_bytes(b"half")
        os.utime(left[name], (mtime, mtime))
    gc(asset.store, dry_run=True, grace=0)
    assert all(path.exists() for path in left.values())  # a dry run removes nothing
    gc(asset.store, grace=0)
    assert sorted(p.name for p in incoming.iterdir()) == ["b" * 64 + ".partial"]  # a day old


def test_add_stores_again_a_staged_object_gone_from_the_store(asset: Asset) -> None:
    write(asset.root, {"a": "kept", "b": "lost"})
    add(asset, ["."])
    lost = hash_bytes(b"lost")
    os.unlink(asset.odb.path(lost))
    again = add(asset, ["."])
    assert (again.new, again.modified, again.restored) == ([], [], ["b"])
    assert asset.odb.get(lost) == b"lost"


@pytest.mark.parametrize("count", [0, 10_000])  # a store much bigger than the index, or not
def test_the_check_for_lost_objects_finds_what_is_stored(tmp_path: Path, count: int) -> None:
    from ama.plumbing.odb import FileObjectDatabase
    from ama.porcelain.add import _stored

    odb = FileObjectDatabase(tmp_path / "objects")
    kept = [odb.write(f"object {i}".encode()) for i in range(300)]
    (odb.root / "00").mkdir(exist_ok=True)
    (odb.root / "00" / ("1" * 62)).write_bytes(b"")  # a name in the folder sampled
    stored = _stored(str(odb.root), count)
    assert all(stored(oid) for oid in kept) and stored("00" + "1" * 62)
    assert not stored(hash_bytes(b"never written")) and not stored("01" + "1" * 62)
