from __future__ import annotations

import json

import pytest

from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.objects import Input
from ama.porcelain import inputs
from ama.porcelain.asset import Asset
from ama.porcelain.config import Config
from ama.porcelain.info import Remote, connect
from tests.unit.porcelain.conftest import write
from tests.unit.porcelain.published import publish


@pytest.fixture
def remote() -> Remote:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "datasets")
    return remote


def test_staged_inputs_round_trip_through_the_file(asset: Asset) -> None:
    a = Input("a" * 64, "datasets/2/0.0.0", "training-data")
    b = Input("b" * 64, "datasets/1/1.0.0", "eval")
    inputs.write_staged(asset, [a, b])
    assert inputs.staged(asset) == [b, a]
    text = (asset.dir.meta / "inputs").read_text()
    assert text.endswith("}\n") and json.loads(text)["format"] == "ama-inputs/1"
    assert [i["name"] for i in json.loads(text)["inputs"]] == ["datasets/1/1.0.0",
                                                               "datasets/2/0.0.0"]
    inputs.reset(asset)
    assert inputs.staged(asset) == []


@pytest.mark.parametrize("data", [b"", b"{}", b'{"format":"ama-inputs/2","inputs":[]}',
                                  b'{"format":"ama-inputs/1","inputs":[{"name":"x"}]}',
                                  b'{"format":"ama-inputs/1","inputs":[{"name":"d/1/0.0.0",'
                                  b'"manifest":"zz","label":""}]}'])
def test_a_damaged_inputs_file_is_named(asset: Asset, data: bytes) -> None:
    (asset.dir.meta / "inputs").write_bytes(data)
    with pytest.raises(inputs.CorruptInputs, match=r"\.ama/inputs is damaged"):
        inputs.staged(asset)


def test_add_relabel_and_remove(asset: Asset, remote: Remote) -> None:
    d1 = publish(remote.transport, remote.project, "datasets", {"x": b"1"})
    change = inputs.add(asset, remote, "datasets/1", "training-data")
    assert change.action == "added" and change.input == Input(d1["manifest"],
                                                               "datasets/1/0.0.0",
                                                               "training-data")
    assert inputs.add(asset, remote, "datasets/1/0.0.0", "training-data").action == "unchanged"
    assert inputs.add(asset, remote, "datasets/1/0.0.0", "eval").action == "relabelled"
    assert inputs.staged(asset) == [Input(d1["manifest"], "datasets/1/0.0.0", "eval")]
    with pytest.raises(BadInput, match="label"):
        inputs.add(asset, remote, "datasets/1/0.0.0", "two\nlines")
    with pytest.raises(NotFound):
        inputs.add(asset, remote, "datasets/2/0.0.0", "x")
    with pytest.raises(inputs.NotAnInput, match=r"staged: datasets/1/0\.0\.0"):
        inputs.remove(asset, "datasets/1/0.0.1")
    assert inputs.remove(asset, "datasets/1/0.0.0").inputs == []
    assert inputs.staged(asset) == [] and inputs.is_staged(asset)


def test_inputs_carry_over_from_the_version_held(asset: Asset, remote: Remote) -> None:
    d1 = publish(remote.transport, remote.project, "datasets", {"x": b"1"})
    inputs.add(asset, remote, "datasets/1/0.0.0", "training-data")
    write(asset.root, {"w": "w"})
    from ama.porcelain.add import add

    add(asset, ["."])
    # An upload records the staged inputs in the manifest, then forgets the file.
    from datetime import datetime, timezone

    from ama.plumbing.graph import write_tree
    from ama.plumbing.objects import Author, Manifest

    manifest = Manifest.create(write_tree(asset.odb, asset.index().entries.values()),
                               Author("T", "t@example.org"),
                               datetime(2026, 1, 1, tzinfo=timezone.utc), "v",
                               inputs=inputs.staged(asset))
    oid = asset.odb.write(manifest.serialize())
    from ama.porcelain.asset import Head

    head = asset.head
    asset.set_head(Head(head.class_name, "1", "0.0.0", oid, head.remote, head.project))
    inputs.reset(asset)
    assert inputs.recorded(asset) == inputs.staged(asset) == [
        Input(d1["manifest"], "datasets/1/0.0.0", "training-data")]
    listing = inputs.listing(asset)
    assert listing.added == [] and listing.removed == []
    inputs.remove(asset, "datasets/1/0.0.0")
    assert [i.name for i in inputs.listing(asset).removed] == ["datasets/1/0.0.0"]


def test_a_version_cannot_be_its_own_input(asset: Asset, remote: Remote) -> None:
    remote.transport.put_class(remote.project, "ml-models")
    v = publish(remote.transport, remote.project, "ml-models", {"x": b"1"})
    head = asset.head
    from ama.porcelain.asset import Head

    asset.set_head(Head(head.class_name, "1", "0.0.0", v["manifest"], head.remote, head.project))
    with pytest.raises(BadInput, match="cannot be an input of its own"):
        inputs.add(asset, remote, "ml-models/1/0.0.0", "self")
