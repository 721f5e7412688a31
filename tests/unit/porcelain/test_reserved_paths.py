"""A version whose paths an asset directory may not hold (``.ama/…``, a name the rules
forbid), as a remote from before the server refused them could serve: no command that
writes a version's files writes any of it, and ``.ama/`` stays as it was."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from ama.cli.main import cli
from ama.plumbing.index import MODE_FILE, IndexEntry
from ama.plumbing.objects import UnsafePaths, path_problems, reserved_problem
from ama.porcelain.asset import Asset, Head
from ama.porcelain.clone import clone
from ama.porcelain.config import Config
from ama.porcelain.download import download
from ama.porcelain.info import connect
from ama.porcelain.switch import switch
from ama_remote.models import Asset as AssetRow
from ama_remote.models import AssetClass, Version
from tests.unit.porcelain.published import publish

HOSTILE = b"class: ml-models\nasset: 666\n"


@pytest.mark.parametrize("name", [".ama", ".AMA", ".Ama.", ".ama ", ".a\u200cma"])
def test_the_folder_of_ama_is_reserved_however_a_filesystem_spells_it(name: str) -> None:
    assert reserved_problem(name) is not None
    assert path_problems([f"ok/{name}/HEAD", "fine.txt"]) == [
        (f"ok/{name}/HEAD", reserved_problem(name))]


@pytest.mark.parametrize("name", [".amaignore", "ama", "x.ama", ".ama-notes", ".amb"])
def test_names_merely_like_it_are_free(name: str) -> None:
    assert reserved_problem(name) is None and path_problems([f"d/{name}"]) == []


def test_paths_that_break_the_name_rules_are_named_too() -> None:
    assert [p for p, _ in path_problems(["a/../b", "a//b", "ok", "a/./b"])] == [
        "a/../b", "a//b", "a/./b"]


@pytest.fixture
def remote_with_a_hostile_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                  ) -> dict[str, str]:
    """ml-models/1: version 0.0.0 is fine, 0.0.1 holds .ama/HEAD and sub/.ama/index, as a
    remote that did not check its versions' paths accepted them."""
    monkeypatch.chdir(tmp_path)
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    good = publish(remote.transport, remote.project, "ml-models", {"a.txt": b"alpha\n"})
    files = {"a.txt": b"alpha\n", ".ama": {"HEAD": HOSTILE},
             "sub": {".ama": {"index": b"x"}, "b.txt": b"beta\n"}}
    with pytest.raises(Exception) as refused:  # this remote refuses it now
        publish(remote.transport, remote.project, "ml-models", files, asset=1,
                parent=good["manifest"])
    assert ".ama/HEAD" in str(getattr(refused.value, "problems", "")) + str(refused.value)
    manifest = _last_manifest(remote.transport.service, good["manifest"])
    with remote.transport.service.db.transaction() as s:
        asset = s.scalar(select(AssetRow).join(AssetClass, AssetRow.class_id == AssetClass.id)
                         .where(AssetClass.name == "ml-models", AssetRow.ordinal == 1))
        first = s.scalar(select(Version).where(Version.asset_id == asset.id))
        tree = _tree_of(remote.transport.service, manifest)
        s.add(Version(asset_id=asset.id, major=0, minor=0, patch=1, manifest_id=manifest,
                      tree_id=tree, parent_id=first.id, author_id=first.author_id,
                      created=datetime(2026, 11, 28)))
    return {"good": good["manifest"], "bad": manifest}


def _last_manifest(service: object, other_than: str) -> str:
    from ama_remote.models import StoredObject

    with service.db.read() as s:  # type: ignore[attr-defined]
        return str(s.scalar(select(StoredObject.oid).where(StoredObject.kind == "manifest",
                                                          StoredObject.oid != other_than)))


def _tree_of(service: object, manifest: str) -> str:
    import json

    from ama_remote.models import StoredObject

    with service.db.read() as s:  # type: ignore[attr-defined]
        data = s.scalar(select(StoredObject.data).where(StoredObject.oid == manifest))
        return str(json.loads(data)["tree"])


def test_clone_refuses_the_version_before_creating_anything(
        remote_with_a_hostile_version: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(UnsafePaths) as refused:
        clone("ml-models/1", tmp_path / "c", version="0.0.1")
    assert ".ama/HEAD" in refused.value.message and "sub/.ama/index" in refused.value.message
    assert refused.value.exit_code == 1
    assert not (tmp_path / "c").exists()


def test_switch_and_download_leave_the_asset_directory_as_it_was(
        remote_with_a_hostile_version: dict[str, str], tmp_path: Path) -> None:
    copy = clone("ml-models/1", tmp_path / "c", version="0.0.0")
    head = (copy.root / ".ama" / "HEAD").read_bytes()
    index = (copy.root / ".ama" / "index").read_bytes()
    with pytest.raises(UnsafePaths):
        switch(copy, "0.0.1", force=True)
    assert (copy.root / ".ama" / "HEAD").read_bytes() == head
    assert (copy.root / ".ama" / "index").read_bytes() == index
    assert not (copy.root / "sub").exists()
    assert not (copy.root / ".ama" / "switch").exists()

    # HEAD on that version, as a clone --soft by an older ama left it: download -f, the
    # hint an older clone gave, writes nothing either.
    old = copy.head
    copy.set_head(Head(old.class_name, old.asset, "0.0.1",
                       remote_with_a_hostile_version["bad"], old.remote, old.project))
    head = (copy.root / ".ama" / "HEAD").read_bytes()
    with pytest.raises(UnsafePaths):
        download(Asset.open(copy.root), force=True)
    assert (copy.root / ".ama" / "HEAD").read_bytes() == head
    assert HOSTILE not in head


def test_read_tree_and_checkout_index_refuse_such_paths(
        remote_with_a_hostile_version: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    copy = clone("ml-models/1", tmp_path / "c", version="0.0.0")
    with pytest.raises(UnsafePaths):  # it brings the version's trees into the store first
        clone("ml-models/1", tmp_path / "other", version="0.0.1", soft=True)
    monkeypatch.chdir(copy.root)
    head = (copy.root / ".ama" / "HEAD").read_bytes()
    index = (copy.root / ".ama" / "index").read_bytes()
    runner = CliRunner()
    read = runner.invoke(cli, ["read-tree", remote_with_a_hostile_version["bad"]])
    assert read.exit_code == 1 and ".ama/HEAD" in read.output, read.output
    assert (copy.root / ".ama" / "index").read_bytes() == index

    # An index that holds such a path however it got there: checkout-index writes nothing.
    staged = copy.index()
    staged.add(IndexEntry(".ama/HEAD", staged.entries["a.txt"].id, 6, 0, 0, MODE_FILE))
    staged.write()
    out = runner.invoke(cli, ["checkout-index", "-a", "-f"])
    assert out.exit_code == 1 and ".ama/HEAD" in out.output, out.output
    assert (copy.root / ".ama" / "HEAD").read_bytes() == head
