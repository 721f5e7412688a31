"""Fixtures for the porcelain: a known class and a fresh asset directory in tmp_path."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

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
