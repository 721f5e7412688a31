from __future__ import annotations

from pathlib import Path

import pytest

from ama.plumbing.errors import BadInput, NotFound
from ama.porcelain.asset import Asset
from ama.porcelain.config import Config
from ama.porcelain.find import find_alias, find_file, find_hash, find_size
from ama.porcelain.info import AssetRef, NotUploaded, connect, info, parse_name, resolve_version
from ama.porcelain.list import list_assets
from tests.unit.porcelain.published import publish


@pytest.mark.parametrize("text, ref", [
    ("ml-models/1", AssetRef("ml-models", "1")),
    ("ml-models/12/0.10.3", AssetRef("ml-models", "12", "0.10.3")),
    ("ml-models/prod-resnet", AssetRef("ml-models", "prod-resnet")),
    ("a.b/x_1/1.0.0", AssetRef("a.b", "x_1", "1.0.0")),
])
def test_parse_name(text: str, ref: AssetRef) -> None:
    assert parse_name(text) == ref
    assert str(ref) == text
    assert ref.is_alias == (not ref.asset.isdigit())


@pytest.mark.parametrize("text", ["ml-models", "ml-models/", "/1", "ml-models/1/0.0",
                                  "ml-models/01", "ml-models/0", "ML/1", "ml-models/1/0.01.0",
                                  "ml-models/1/0.0.0/x", "ml-models/Prod"])
def test_parse_name_refuses(text: str) -> None:
    with pytest.raises(BadInput, match=f"invalid asset name {text!r}") as e:
        parse_name(text)
    assert e.value.hint is not None and "CLASS/ASSET" in e.value.hint


def test_parse_name_requires_or_forbids_a_version() -> None:
    with pytest.raises(BadInput, match="names an asset, not one of its versions"):
        parse_name("ml-models/1", version=True)
    with pytest.raises(BadInput, match="names a version"):
        parse_name("ml-models/1/0.0.0", version=False)


def test_lookups_on_the_embedded_remote(tmp_path: Path) -> None:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    v1 = publish(remote.transport, remote.project, "ml-models", {"a": b"a", "d": {"b": b"bb"}})
    v2 = publish(remote.transport, remote.project, "ml-models", {"a": b"A"}, asset=1,
                 parent=v1["manifest"])
    assert resolve_version(remote, parse_name("ml-models/1"))["manifest"] == v2["manifest"]
    assert resolve_version(remote, parse_name("ml-models/1/0.0.0"))["manifest"] == v1["manifest"]
    with pytest.raises(NotFound, match="version 0.1.0 of ml-models/1 not found"):
        resolve_version(remote, parse_name("ml-models/1/0.1.0"))
    with pytest.raises(NotFound):
        resolve_version(remote, parse_name("ml-models/2"))

    shown = info(remote, parse_name("ml-models/1"))
    assert shown.hash == v2["tree"] and shown.manifest is None  # no store given
    assert [v["version"] for v in shown.versions] == ["0.0.0", "0.0.1"]
    from ama.plumbing.store import Store

    shown = info(remote, parse_name("ml-models/1/0.0.0"), Store.open().objects)
    assert shown.manifest is not None and shown.manifest.tree == v1["tree"]
    assert shown.to_json()["hash"] == v1["tree"]

    assert [a.to_json() for a in list_assets(remote, "ml-models")] == [
        {"name": "ml-models/1", "ordinal": 1, "aliases": [], "title": "", "tags": [],
         "latest": "0.0.1", "versions": 2, "status": "active", "deleted": None}]
    assert [v["version"] for v in find_hash(remote, v1["tree"])] == ["0.0.0"]
    assert find_alias(remote, "nobody") == []
    assert find_size(remote, parse_name("ml-models/1/0.0.0"))["bytes"] == 3
    (tmp_path / "b").write_bytes(b"bb")
    assert [v["paths"] for v in find_file(remote, tmp_path / "b").versions] == [["d/b"]]
    with pytest.raises(BadInput):
        find_file(remote, tmp_path)


def test_a_temp_asset_is_not_on_the_remote(asset: Asset) -> None:
    from ama.porcelain.info import ref_of

    with pytest.raises(NotUploaded, match="not uploaded yet"):
        ref_of(asset)


def test_the_hash_of_a_temp_asset_is_the_hash_of_its_staged_files(asset: Asset) -> None:
    from ama.plumbing.graph import write_tree
    from ama.porcelain.add import add
    from ama.porcelain.info import asset_hash

    (asset.root / "a.txt").write_text("a")
    (asset.root / "d").mkdir()
    (asset.root / "d" / "b.txt").write_text("b")
    add(asset, ["."])
    expected = write_tree(asset.odb, asset.index().entries.values())
    assert asset_hash(asset) == expected
    (asset.root / "a.txt").write_text("changed, not staged")
    assert asset_hash(asset) == expected
