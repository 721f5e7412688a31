"""Temp files in work trees: short names of their own (``.ama-tmp-<random>``), so that any
file name a tree can hold is placed; never staged; removed by the next checkout there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ama.plumbing.objects import MAX_NAME_BYTES
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.clone import clone
from ama.porcelain.config import Config
from ama.porcelain.discard import discard
from ama.porcelain.info import connect
from ama.porcelain.status import status
from ama.porcelain.switch import switch
from ama.porcelain.upload import upload
from tests.e2e.test_lifecycle import files
from tests.unit.porcelain.conftest import write

BIG = 300_000  # copied through the kernel, not read whole
LONG = "n" * (MAX_NAME_BYTES - 4)


def published(asset: Asset, data: dict[str, bytes | str], strategy: str) -> Asset:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    asset.config.set("link.strategy", strategy)
    asset = Asset.open(asset.root)
    write(asset.root, data)
    add(asset, ["."])
    upload(asset, "first")
    return asset


@pytest.mark.parametrize("strategy", ["auto", "hardlink"])
def test_names_of_up_to_255_bytes_are_cloned_and_discarded(asset: Asset, tmp_path: Path,
                                                           strategy: str) -> None:
    data: dict[str, bytes | str] = {
        f"{LONG}.txt": "small", f"d/{LONG}.bin": os.urandom(BIG),
        "é" * (MAX_NAME_BYTES // 2) + "x": "two-byte characters"}
    asset = published(asset, data, strategy)
    assert all(len(n.rpartition("/")[2].encode()) >= MAX_NAME_BYTES - 1 for n in data)
    copy = clone("ml-models/1", tmp_path / "c")
    assert files(copy.root) == {k: v.encode() if isinstance(v, str) else v
                                for k, v in data.items()}
    for name in data:
        path = copy.root / name
        path.unlink()  # a new file, not a write through a hard link to the store
        path.write_bytes(b"edited")
    assert status(copy).modified == sorted(data)
    assert sorted(discard(copy).restored) == sorted(data)
    assert files(copy.root) == files(asset.root)
    assert status(copy).clean


def test_leftover_temp_files_are_never_staged_and_the_next_switch_removes_them(
        asset: Asset) -> None:
    asset = published(asset, {"d/big0.bin": os.urandom(BIG), "d/keep.txt": "keep"}, "auto")
    (asset.root / "d/big0.bin").write_bytes(os.urandom(BIG))
    add(asset, ["."])
    upload(asset, "second")
    # What a switch killed while it copied big0.bin leaves beside it.
    leftover = asset.root / "d" / ".ama-tmp-0123456789abcdef"
    leftover.write_bytes(os.urandom(BIG // 2))
    assert status(asset).clean
    assert add(asset, ["."]).new == []
    assert ".ama-tmp-0123456789abcdef" not in str(asset.index().entries)
    switch(asset, "0.0.0")
    assert not leftover.exists()
    assert sorted(os.listdir(asset.root / "d")) == ["big0.bin", "keep.txt"]
    assert status(asset).clean
