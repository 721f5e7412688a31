from __future__ import annotations

import json
import os
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


def test_a_registration_cut_short_never_joins_the_next_nor_breaks_the_registry(
        tmp_path: Path) -> None:
    """A full disk or a kill may leave the registry's last line cut short (no newline, half
    a character): the next registration starts a line of its own, and reading the registry
    still works, so that ``ama store gc`` still sees every asset directory."""
    from ama.porcelain.asset import registry_path

    init_class(LocalClasses.open(), "ml-models")
    first, second = tmp_path / "first", tmp_path / "sécond"
    first.mkdir()
    second.mkdir()
    init(first, "ml-models")
    registry = registry_path(home_dir())
    with registry.open("ab") as f:
        f.write(str(tmp_path / "cut-sh").encode() + "é".encode()[:1])  # no newline
    init(second, "ml-models")
    assert registered(home_dir())[0] == first and registered(home_dir())[-1] == second
    # A folder whose name is not UTF-8 is registered, and read back, as the system names it.
    odd = tmp_path / os.fsdecode(b"caf\xe9")
    odd.mkdir()
    init(odd, "ml-models")
    assert registered(home_dir())[-1] == odd


def test_a_registration_waits_for_a_prune_and_is_kept(tmp_path: Path) -> None:
    """``ama store prune`` rewrites the registry from what it read: a directory registered
    in between would be dropped (and its staged objects no longer kept by ``ama store
    gc``). A registration waits while the registry is held, and lands after."""
    import threading

    from ama.porcelain.asset import register, registry_locked

    home = home_dir()
    roots = [tmp_path / "a", tmp_path / "b"]
    register(home, roots[0])
    with registry_locked(home):  # as prune holds it from its read to its rewrite
        late = threading.Thread(target=register, args=(home, roots[1]))
        late.start()
        late.join(timeout=1.0)
        assert late.is_alive() and registered(home) == roots[:1]
    late.join(timeout=30)
    assert not late.is_alive() and registered(home) == roots


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
