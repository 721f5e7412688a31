from __future__ import annotations

import json
from pathlib import Path

import pytest

from ama.plumbing.errors import BadInput
from ama.plumbing.store import home_dir
from ama.porcelain.asset import Head, registered
from ama.porcelain.classes import ClassExists, LocalClasses, UnknownClass, init_class
from ama.porcelain.init import AlreadyInitialised, NestedAssetDir, init


def test_init_writes_head_and_registers(tmp_path: Path) -> None:
    init_class(LocalClasses.open(), "ml-models")
    root = tmp_path / "m"
    root.mkdir()
    head = init(root, "ml-models", token_hex=lambda n: "ab" * n)
    assert head.name == "temp_abababababab"
    data = json.loads((root / ".ama" / "HEAD").read_text())
    assert data == {"asset": "temp_abababababab", "class": "ml-models", "format": "ama-head/1",
                    "manifest": None, "project": "default", "remote": "local",
                    "version": "temp_"}
    assert Head.read(root / ".ama") == head
    assert registered(home_dir()) == [root]


def test_init_refusals_change_nothing(tmp_path: Path) -> None:
    init_class(LocalClasses.open(), "ml-models")
    outer = tmp_path / "outer"
    (outer / "inner").mkdir(parents=True)
    with pytest.raises(UnknownClass) as e:
        init(outer, "nope")
    assert e.value.exit_code == 3 and "ama class init nope" in (e.value.hint or "")
    assert not (outer / ".ama").exists()
    init(outer / "inner", "ml-models")
    with pytest.raises(NestedAssetDir, match="contains the asset directory"):
        init(outer, "ml-models")
    (outer / "inner" / "deeper").mkdir()
    with pytest.raises(NestedAssetDir, match="inside the asset directory"):
        init(outer / "inner" / "deeper", "ml-models")
    with pytest.raises(AlreadyInitialised):
        init(outer / "inner", "ml-models")
    assert not (outer / ".ama").exists() and not (outer / "inner" / "deeper" / ".ama").exists()
    assert registered(home_dir()) == [outer / "inner"]


def test_class_init_checks_schema_and_refuses_duplicates(tmp_path: Path) -> None:
    classes = LocalClasses.open()
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": 12}')
    with pytest.raises(BadInput, match="not a valid JSON Schema"):
        init_class(classes, "models", schema_file=str(bad))
    notjson = tmp_path / "rules.json"
    notjson.write_text("{")
    with pytest.raises(BadInput, match="not JSON"):
        init_class(classes, "models", rules_file=str(notjson))
    assert classes.names() == []
    good = tmp_path / "schema.json"
    good.write_text('{"type": "object", "required": ["accuracy"]}')
    cls = init_class(classes, "models", "Trained models", schema_file=str(good))
    assert classes.get("models") == cls
    assert cls.schema == {"type": "object", "required": ["accuracy"]}
    with pytest.raises(ClassExists):
        init_class(classes, "models")
    with pytest.raises(BadInput):
        init_class(classes, "Bad Name")
