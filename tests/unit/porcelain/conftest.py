"""Fixtures for the porcelain: a known class and a fresh asset directory in tmp_path."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ama.plumbing import pack
from ama.plumbing.graph import write_tree
from ama.plumbing.objects import Author, Manifest
from ama.porcelain.asset import Asset, Head
from ama.porcelain.classes import LocalClasses, init_class
from ama.porcelain.init import init


@pytest.fixture
def asset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Asset:
    """A temp asset of class ml-models in tmp_path/m, which is the working directory."""
    init_class(LocalClasses.open(), "ml-models")
    root = tmp_path / "m"
    root.mkdir()
    monkeypatch.chdir(root)
    init(root, "ml-models")
    return Asset.open(root)


def write(root: Path, files: dict[str, bytes | str]) -> None:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)


def commit(asset: Asset, version: str = "0.0.0") -> str:
    """Record the index as a version of ``asset`` the way an upload leaves it: a manifest
    in the store and HEAD naming it (the remote is not involved)."""
    index = asset.index()
    tree = write_tree(asset.odb, index.entries.values())
    parents = [asset.head.manifest] if asset.head.manifest else []
    manifest = Manifest.create(tree, Author("T", "t@example.org"),
                               datetime(2026, 11, 27, tzinfo=timezone.utc), "v", parents)
    oid = asset.odb.write(manifest.serialize())
    head = asset.head
    asset.set_head(Head(head.class_name, "1", version, oid, head.remote, head.project))
    versions = (asset.store.home / "projects" / head.remote / head.project / "versions"
                / head.class_name / "1")
    versions.mkdir(parents=True, exist_ok=True)
    (versions / version).write_text(oid + "\n")
    return oid


def rewrite_stored(storage: Path, oid: str, change: Callable[[bytes], bytes]) -> bytes:
    """Rewrite in place, through ``change`` (keeping its length), the copy of object ``oid``
    that the ``file://`` storage at ``storage`` holds, loose or in a pack (ama-format(5)
    PACKS), as damage on the remote's disk would; return the new bytes."""
    loose = storage / "objects" / oid[:2] / oid[2:]
    places = [(loose, 0, loose.stat().st_size)] if loose.exists() else []
    for path in sorted((storage / "packs").rglob("*")) if not places else ():
        if path.is_file():
            with open(path, "rb") as f:
                places += [(path, m.offset, m.length) for m in pack.read_index(f, path.name)
                           if m.id == oid]
    [(path, offset, length)] = places
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        f.seek(offset)
        new = change(f.read(length))
        assert len(new) == length
        f.seek(offset)
        f.write(new)
    os.chmod(path, 0o444)
    return new
