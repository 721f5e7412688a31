"""ama.lock: deterministic TOML that round-trips, and clear errors for what ama never writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from ama.porcelain.lockfile import BadLock, Lock, LockEntry, check_path

M1 = "a" * 64
M2 = "b" * 64


def entry(path: str = "data/train", asset: str = "3", version: str = "0.0.2",
          manifest: str | None = M1, **kw: str) -> LockEntry:
    return LockEntry(path=path, class_name="imagenet-subsets", asset=asset, version=version,
                     manifest=manifest, **kw)


def test_serialize_is_sorted_by_path_and_exact() -> None:
    lock = Lock((entry("zeta"), entry("data/train", asset="4", manifest=M2)))
    text = lock.serialize().decode()
    assert text.splitlines()[2:] == [
        "",
        'format = "ama-lock/1"',
        "",
        "[[asset]]",
        'path = "data/train"',
        'name = "imagenet-subsets/4"',
        'version = "0.0.2"',
        f'manifest = "{M2}"',
        'remote = "local"',
        'project = "default"',
        "",
        "[[asset]]",
        'path = "zeta"',
        'name = "imagenet-subsets/3"',
        'version = "0.0.2"',
        f'manifest = "{M1}"',
        'remote = "local"',
        'project = "default"',
    ]
    # The same content in any order gives the same bytes.
    assert Lock((entry("data/train", asset="4", manifest=M2), entry("zeta"))).serialize() \
        == lock.serialize()


@pytest.mark.parametrize("path", ["data/train", "with space/it's $(x)", "données/é",
                                  'quote"d\\back'])
def test_round_trip(tmp_path: Path, path: str) -> None:
    lock = Lock((entry(path), entry("temp", asset="temp_0123456789ab", version="temp_",
                                    manifest=None, remote="team", project="vision")))
    lock.write(tmp_path)
    again = Lock.read(tmp_path)
    assert again == lock
    assert again.get(path) == entry(path)
    assert again.get("temp").is_temp  # type: ignore[union-attr]
    assert "manifest" not in again.get("temp").to_toml()  # type: ignore[union-attr]


def test_missing_lock_is_empty(tmp_path: Path) -> None:
    assert len(Lock.read(tmp_path)) == 0


def test_replace_and_remove_entries() -> None:
    lock = Lock((entry(),)).with_entry(entry(version="0.1.0", manifest=M2))
    assert [e.version for e in lock] == ["0.1.0"]
    assert len(lock.without("data/train/")) == 0


@pytest.mark.parametrize("other", ["data", "data/train/sub"])
def test_overlapping_checkouts_are_refused(other: str) -> None:
    with pytest.raises(BadLock, match="overlap"):
        Lock((entry(),)).with_entry(entry(other))


@pytest.mark.parametrize("path, problem", [
    ("/abs", "absolute"), ("../out", "leaves"), (".", "root"), (".git/x", ".git"),
    ("a\nb", "newline"),
])
def test_bad_paths(path: str, problem: str) -> None:
    with pytest.raises(BadLock, match=problem):
        check_path(path)


def test_path_is_normalised() -> None:
    assert check_path("./data//train/") == "data/train"


GOOD = f'''format = "ama-lock/1"
[[asset]]
path = "d"
name = "c/1"
version = "0.0.0"
manifest = "{M1}"
remote = "local"
project = "default"
'''


@pytest.mark.parametrize("text, problem", [
    ("format = 'x'", "not an ama-lock/1"),
    ("format = ", "not valid TOML"),
    (GOOD.replace('version = "0.0.0"', 'version = "01.0.0"'), "<major>.<minor>.<patch>"),
    (GOOD.replace('version = "0.0.0"', 'version = "latest"'), "<major>.<minor>.<patch>"),
    (GOOD.replace(f'manifest = "{M1}"\n', ""), "manifest id"),
    (GOOD.replace('name = "c/1"', 'name = "c"'), "<class>/<ordinal>"),
    (GOOD.replace('name = "c/1"', 'name = "C/1"'), "<class>/<ordinal>"),
    (GOOD.replace('remote = "local"', 'remote = 3'), "remote"),
    (GOOD + 'colour = "red"\n', "unknown keys: colour"),
    (GOOD + GOOD.split("\n", 1)[1], "twice"),
    (GOOD.replace('name = "c/1"\nversion = "0.0.0"', 'name = "c/temp_x"\nversion = "0.0.0"'),
     "never-uploaded"),
    ('format = "ama-lock/1"\n<<<<<<< HEAD\n', "conflict markers"),
])
def test_bad_locks(text: str, problem: str) -> None:
    with pytest.raises(BadLock, match=problem) as caught:
        Lock.deserialize(text.encode(), "repo/ama.lock")
    assert "repo/ama.lock" in caught.value.message
    assert caught.value.hint
    assert caught.value.exit_code == 2


def test_good_lock_parses() -> None:
    (only,) = Lock.deserialize(GOOD.encode()).entries
    assert (only.name, only.ref, only.path) == ("c/1", "c/1/0.0.0", "d")
