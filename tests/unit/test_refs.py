"""Refs: compare-and-swap updates under a lock file, symbolic refs, name rules."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ama.plumbing.errors import BadInput, NotFound
from ama.plumbing.refs import (
    ANY,
    ZERO_ID,
    InvalidRefName,
    RefConflict,
    RefLocked,
    RefStore,
    check_ref_name,
)

A = "a" * 64
B = "b" * 64
C = "c" * 64
MAIN = "refs/heads/main"


@pytest.fixture
def refs(tmp_path: Path) -> RefStore:
    return RefStore(tmp_path / "store")


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_create_must_not_exist_then_move_by_cas(refs: RefStore) -> None:
    refs.update(MAIN, A, None)
    assert refs.read(MAIN) == A
    assert (refs.root / MAIN).read_bytes() == A.encode() + b"\n"
    refs.update(MAIN, B, A)
    assert refs.read(MAIN) == B
    refs.update(MAIN, C, ANY)
    assert refs.read(MAIN) == C
    assert list(refs.iter()) == [(MAIN, C)]


def test_the_zero_id_means_must_not_exist(refs: RefStore) -> None:
    refs.update(MAIN, A, ZERO_ID)
    with pytest.raises(RefConflict) as caught:
        refs.update(MAIN, B, ZERO_ID)
    assert "expected not to exist" in caught.value.message
    assert A in caught.value.message


def test_cas_with_a_stale_old_value_changes_nothing(refs: RefStore) -> None:
    refs.update(MAIN, A, None)
    before = snapshot(refs.root)
    with pytest.raises(RefConflict) as caught:
        refs.update(MAIN, C, B)
    error = caught.value
    assert error.exit_code == 1
    assert MAIN in error.message and B in error.message and A in error.message
    assert error.hint and "retry" in error.hint
    assert snapshot(refs.root) == before  # value unchanged, no lock left behind


def test_cas_on_a_missing_ref_with_an_old_value_conflicts(refs: RefStore) -> None:
    with pytest.raises(RefConflict, match="it does not exist"):
        refs.update(MAIN, A, B)
    assert refs.read(MAIN) is None
    assert snapshot(refs.root) == {}


def test_delete_by_cas(refs: RefStore) -> None:
    refs.update(MAIN, A, None)
    with pytest.raises(RefConflict):
        refs.delete(MAIN, B)
    assert refs.read(MAIN) == A
    refs.delete(MAIN, A)
    assert refs.read(MAIN) is None
    with pytest.raises(NotFound, match=MAIN):
        refs.delete(MAIN, ANY)


def test_symbolic_refs_are_stored_as_written(refs: RefStore) -> None:
    refs.update(MAIN, A, None)
    refs.update("refs/heads/current", "ref: refs/heads/main", None)
    assert refs.read("refs/heads/current") == "ref: refs/heads/main"
    assert dict(refs.iter()) == {MAIN: A, "refs/heads/current": "ref: refs/heads/main"}
    with pytest.raises(InvalidRefName):
        refs.update("refs/heads/bad", "ref: refs/heads/a..b", None)


def test_head_store_holds_only_head(tmp_path: Path) -> None:
    head = RefStore(tmp_path / ".ama", prefix="HEAD")
    head.update("HEAD", "ref: refs/heads/main", None)
    assert (tmp_path / ".ama" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert list(head.iter()) == [("HEAD", "ref: refs/heads/main")]
    with pytest.raises(InvalidRefName, match="must start with 'HEAD'"):
        head.update("refs/heads/main", A, None)


def test_new_value_must_be_an_id_or_a_symref(refs: RefStore) -> None:
    with pytest.raises(BadInput) as caught:
        refs.update(MAIN, "not-an-id", None)
    assert "'not-an-id'" in str(caught.value)
    assert refs.read(MAIN) is None


@pytest.mark.parametrize("name", [
    "", "refs/heads/", "/refs/heads/x", "refs//x", "refs/heads/a b", "refs/heads/a~1",
    "refs/heads/a^", "refs/heads/a:b", "refs/heads/a?", "refs/heads/a*", "refs/heads/a[",
    "refs/heads/a\\b", "refs/heads/a..b", "refs/heads/a@{1}", "refs/heads/.hidden",
    "refs/heads/x.lock", "refs/heads/x.", "refs/heads/tab\there", "refs/heads/nl\n",
    "refs/heads/\x7f",
])
def test_invalid_ref_names_are_refused(refs: RefStore, name: str) -> None:
    with pytest.raises(InvalidRefName) as caught:
        check_ref_name(name)
    assert repr(name) in caught.value.message
    assert caught.value.exit_code == 2
    with pytest.raises(InvalidRefName):
        refs.update(name, A, None)
    assert not refs.root.exists() or snapshot(refs.root) == {}


def test_names_outside_refs_are_refused(refs: RefStore) -> None:
    with pytest.raises(InvalidRefName, match="must start with 'refs/'"):
        refs.update("heads/main", A, None)
    with pytest.raises(InvalidRefName):
        refs.update("HEAD", A, None)


@pytest.mark.parametrize("name", ["refs/heads/main", "refs/tags/v1.0", "refs/a-b_c/d.e",
                                  "refs/heads/naïve"])
def test_valid_ref_names(refs: RefStore, name: str) -> None:
    refs.update(name, A, None)
    assert refs.read(name) == A


# -- locks ---------------------------------------------------------------------------------

HOLD_LOCK = """
import os, sys, time
with open(sys.argv[1], "x") as f:
    f.write(f"{os.getpid()}\\n")
print("locked", flush=True)
sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture
def lock_holder(refs: RefStore) -> Iterator[subprocess.Popen[str]]:
    """A live process that holds the lock of refs/heads/main."""
    lock = refs.root / (MAIN + ".lock")
    lock.parent.mkdir(parents=True)
    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(lock)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def test_a_lock_held_by_a_live_process_is_refused_naming_it(
        refs: RefStore, lock_holder: subprocess.Popen[str]) -> None:
    refs.update(MAIN + "-other", A, None)  # other refs are not blocked
    lock = refs.root / (MAIN + ".lock")
    for attempt in (lambda: refs.update(MAIN, A, None), lambda: refs.delete(MAIN, ANY)):
        with pytest.raises(RefLocked) as caught:
            attempt()
        message = caught.value.message
        assert f"running process {lock_holder.pid}" in message
        assert MAIN in message and str(lock) in message
        assert "stale" not in message
        assert caught.value.exit_code == 1
    assert refs.read(MAIN) is None
    assert lock.read_text() == f"{lock_holder.pid}\n"  # never broken


def test_a_stale_lock_of_a_dead_process_is_broken_with_a_warning(
        refs: RefStore, caplog: pytest.LogCaptureFixture) -> None:
    lock = refs.root / (MAIN + ".lock")
    lock.parent.mkdir(parents=True)
    dead = subprocess.run(
        [sys.executable, "-c",
         "import os, sys; open(sys.argv[1], 'x').write(f'{os.getpid()}\\n')", str(lock)],
        check=True)
    assert dead.returncode == 0
    pid = int(lock.read_text())
    refs.update(MAIN, A, None)
    assert refs.read(MAIN) == A and not lock.exists()
    assert [r.getMessage() for r in caplog.records] == [
        f"removed the lock on ref {MAIN} left by process {pid}, which is no longer running "
        f"({lock})"]


def test_an_empty_lock_file_is_broken_as_stale(refs: RefStore,
                                                caplog: pytest.LogCaptureFixture) -> None:
    lock = refs.root / (MAIN + ".lock")
    lock.parent.mkdir(parents=True)
    lock.write_text("")  # a process that died before it wrote its line, or is writing it
    with pytest.raises(RefLocked, match="is being locked by another process"):
        refs.update(MAIN, A, None)
    os.utime(lock, (1, 1))  # long ago: it died
    refs.update(MAIN, A, None)
    assert refs.read(MAIN) == A
    assert "left by a process that died" in caplog.text


def test_lock_files_are_not_listed_as_refs(refs: RefStore) -> None:
    refs.update(MAIN, A, None)
    (refs.root / "refs/heads/other.lock").write_text("1\n")
    assert list(refs.iter()) == [(MAIN, A)]
