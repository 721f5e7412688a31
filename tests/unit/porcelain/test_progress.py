"""Progress callbacks: the totals (objects and bytes) come before the first advance, and a
large object moves the bytes while it is copied or hashed, not only once it is whole."""

from __future__ import annotations

import os
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner

from ama.cli.main import cli
from ama.porcelain.asset import Asset
from ama.porcelain.clone import clone
from ama.porcelain.config import Config
from ama.porcelain.remotes import local_url
from ama.porcelain.store import verify
from ama.porcelain.switch import switch

# Over the 32 MiB window in which a large file is hashed, and the 8 MiB pieces in which
# one is copied: several steps inside the one object.
BIG = 36 << 20

Call = tuple[int, ...]
Steps = dict[str | None, list[Call]]


def recorder(steps: Steps):  # type: ignore[no-untyped-def]
    """A progress callback keeping its calls by step (None: the command's own work)."""
    return lambda *a, phase=None: steps.setdefault(phase, []).append(a)


def ok(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output


@pytest.fixture
def published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Version 0.0.0 (a.txt) and 0.0.1 (a.txt, b.txt, big.bin) of ml-models/1 on the
    embedded remote of one store; AMA_HOME then names an empty store that reaches that
    remote through AMA_REMOTE, and the working directory is tmp_path."""
    ok(["class", "init", "ml-models"])
    root = tmp_path / "a"
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "a.txt").write_text("one\n")
    ok(["init", "ml-models"])
    ok(["add", "."])
    ok(["upload", "-m", "first"])
    (root / "b.txt").write_text("two\n")
    (root / "big.bin").write_bytes(os.urandom(1 << 20) * (BIG >> 20))
    ok(["add", "."])
    ok(["upload", "-m", "second"])
    monkeypatch.setenv("AMA_REMOTE", local_url(Config.open()))
    monkeypatch.setenv("AMA_HOME", str(tmp_path / "other"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def check_totals_first(calls: list[Call], files: int, size: int) -> None:
    assert calls, "no progress at all"
    assert calls[0] == (0, files, 0, size), calls[:3]
    assert calls[-1] == (files, files, size, size), calls[-3:]
    for done, total, done_bytes, total_bytes in calls:
        assert (total, total_bytes) == (files, size)
        assert 0 <= done <= files and 0 <= done_bytes <= size


def test_clone_gives_its_totals_first_and_moves_within_a_large_object(
        published: Path) -> None:
    steps: Steps = {}
    clone("ml-models/1", published / "c", progress=recorder(steps))
    assert (published / "c" / "big.bin").stat().st_size == BIG
    # The files counted as the version's trees are read, before any total is known.
    counting = [c for c in steps[None] if c[1] == 0]
    assert counting and counting[-1] == (3, 0), steps[None]
    assert steps[None][:len(counting)] == counting
    # Files, not only the big one; the version's manifest and trees travel apart.
    size = BIG + len("one\n") + len("two\n")
    for step in (None, "placing files"):
        calls = [c for c in steps[step] if c[1]]
        check_totals_first(calls, 3, size)
        # Steps inside big.bin, before it is whole: bytes below its size, no file done.
        inside = {b for d, _, b, _ in calls if 0 < b < BIG and d < 3}
        assert len(inside) >= 2, (step, calls)
    # The sync between the two: a wait with no total, then its end; and, before all, the
    # wait for the remote to open.
    assert steps["syncing to disk"] == [(0, 0), (1, 1)]
    assert steps["reaching the remote"] == [(0, 0)]


def test_switch_gives_its_totals_first(published: Path) -> None:
    asset = clone("ml-models/1", published / "c", version="0.0.0")
    steps: Steps = {}
    switch(Asset.open(published / "c"), "0.0.1", progress=recorder(steps))
    assert (published / "c" / "big.bin").stat().st_size == BIG
    check_totals_first(steps[None], 2, BIG + len("two\n"))
    check_totals_first(steps["placing files"], 2, BIG + len("two\n"))
    assert steps["syncing to disk"] == [(0, 0), (1, 1)]
    assert asset.root == published / "c"


def test_store_verify_gives_its_totals_first_and_moves_within_a_large_object(
        published: Path) -> None:
    clone("ml-models/1", published / "c")
    store = Asset.open(published / "c").store
    calls: list[Call] = []
    result = verify(store, progress=lambda *a: calls.append(a))
    assert not result.corrupt
    objects = result.checked
    size = sum(os.stat(store.objects.path(oid)).st_size for oid in store.objects)
    check_totals_first(calls, objects, size)
    # A window of the large object hashed: bytes move while the objects done stay put.
    assert any(d == d2 < objects and b < b2
               for (d, _, b, _), (d2, _, b2, _) in pairwise(calls)), calls


def test_a_local_copy_of_a_large_object_moves_while_it_is_copied(published: Path) -> None:
    # The embedded remote's objects reach the store by a copy (never a hard link): the
    # copy and the hash that follows each tell their part of the bytes.
    from ama.plumbing.hashing import hash_file
    from ama.plumbing.odb import FileObjectDatabase

    source = published / "big.bin"
    source.write_bytes(os.urandom(1 << 20) * (BIG >> 20))
    oid = hash_file(source)
    odb = FileObjectDatabase(published / "objects")
    steps: list[int] = []
    assert odb.write_link(source, oid, BIG, on_bytes=steps.append)
    assert sum(steps) == BIG and len(steps) >= 3, steps
    assert odb.path(oid).read_bytes() == source.read_bytes()


def test_an_upload_to_the_embedded_remote_moves_within_a_large_object(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ama.porcelain.upload import upload

    ok(["class", "init", "ml-models"])
    root = tmp_path / "m"
    root.mkdir()
    monkeypatch.chdir(root)
    (root / "a.bin").write_bytes(os.urandom(1 << 20) * (BIG >> 20))
    (root / "b.txt").write_text("b\n")
    ok(["init", "ml-models"])
    ok(["add", "."])
    steps: Steps = {}
    upload(Asset.open(root), "first", progress=recorder(steps))
    calls = steps[None]
    # The version's tree and manifest travel with the files.
    objects, size = calls[0][1], calls[0][3]
    assert calls[0] == (0, objects, 0, size) and size >= BIG
    assert calls[-1] == (objects, objects, size, size), calls
    # The remote hashes what it stored window by window: bytes move inside a.bin.
    assert any(0 < b < BIG and d < objects for d, _, b, _ in calls), calls


def test_add_tells_the_files_and_bytes_its_walk_found_before_the_totals(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ama.porcelain.add import add
    from ama.porcelain.asset import TELL_EVERY

    ok(["class", "init", "ml-models"])
    root = tmp_path / "a"
    root.mkdir()
    monkeypatch.chdir(root)
    ok(["init", "ml-models"])
    for d in range(5):
        (root / f"d{d}").mkdir()
        for i in range(200):
            (root / f"d{d}" / f"f{i}.bin").write_bytes(b"x" * (i + 1))
    steps: Steps = {}
    add(Asset.open(root), ["."], cwd=root, progress=recorder(steps))
    calls = steps[None]
    first_total = next(i for i, c in enumerate(calls) if c[1])
    counted = calls[:first_total]
    # Every TELL_EVERY names and after each folder: counts and bytes that only grow, the
    # last of them every file found.
    assert len(counted) >= 1000 // TELL_EVERY
    assert all(c[1] == 0 and c[3] == 0 for c in counted)
    assert all(a[0] <= b[0] and a[2] <= b[2] for a, b in pairwise(counted))
    assert counted[-1][0] == 1000 and counted[-1][2] == 5 * sum(range(1, 201))
    assert calls[first_total][:2] == (0, 1000)
