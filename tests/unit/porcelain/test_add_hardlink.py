"""``ama add`` with the hardlink link strategy: files become their store objects by a link."""

from __future__ import annotations

import os
from pathlib import Path

from ama.plumbing.hashing import hash_bytes
from ama.porcelain.add import add
from ama.porcelain.asset import Asset
from ama.porcelain.status import status
from tests.unit.porcelain.conftest import write


def hardlink(asset: Asset) -> Asset:
    asset.config.set("link.strategy", "hardlink")
    return Asset.open(asset.root)


def test_add_links_plain_files_into_the_store_read_only(asset: Asset) -> None:
    asset = hardlink(asset)
    write(asset.root, {"a.txt": "a", "d/b.txt": "b", "same.txt": "a"})
    result = add(asset, ["."])
    assert result.new == ["a.txt", "d/b.txt", "same.txt"]
    work = os.stat(asset.root / "d/b.txt")
    stored = os.stat(asset.odb.path(hash_bytes(b"b")))
    assert (work.st_ino, work.st_mode & 0o777) == (stored.st_ino, 0o444)
    assert asset.odb.get(hash_bytes(b"b")) == b"b"
    # Two files with the same bytes: one becomes the object, the other stays the user's.
    stored = os.stat(asset.odb.path(hash_bytes(b"a")))
    both = sorted((os.stat(asset.root / n).st_ino == stored.st_ino,
                   os.stat(asset.root / n).st_mode & 0o777) for n in ("a.txt", "same.txt"))
    assert both == [(False, 0o644), (True, 0o444)]
    assert asset.odb.get(hash_bytes(b"a")) == b"a"
    assert status(asset).clean is False  # staged, not uploaded
    assert not status(asset).modified and not status(asset).untracked


def test_add_copies_executables_and_files_with_other_links(asset: Asset,
                                                           tmp_path: Path) -> None:
    asset = hardlink(asset)
    write(asset.root, {"run.sh": "#!/bin/sh\n", "shared.txt": "s"})
    os.chmod(asset.root / "run.sh", 0o755)
    os.link(asset.root / "shared.txt", tmp_path / "elsewhere.txt")
    add(asset, ["."])
    for name, data in (("run.sh", b"#!/bin/sh\n"), ("shared.txt", b"s")):
        work = os.stat(asset.root / name)
        assert work.st_ino != os.stat(asset.odb.path(hash_bytes(data))).st_ino
        assert asset.odb.get(hash_bytes(data)) == data
    assert os.stat(tmp_path / "elsewhere.txt").st_mode & 0o777 == 0o644
    assert asset.index().get("run.sh").executable


def test_a_linked_file_replaced_by_an_editor_is_modified_and_the_object_kept(
        asset: Asset) -> None:
    asset = hardlink(asset)
    write(asset.root, {"a.txt": "old"})
    add(asset, ["a.txt"])
    temp = asset.root / "a.txt.new"
    temp.write_bytes(b"new")
    os.replace(temp, asset.root / "a.txt")
    assert status(asset).modified == ["a.txt"]
    assert asset.odb.get(hash_bytes(b"old")) == b"old"
    assert add(asset, ["."]).modified == ["a.txt"]
    assert asset.odb.get(hash_bytes(b"new")) == b"new"
    assert status(asset).modified == []
