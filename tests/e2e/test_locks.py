"""The index lock through every command that writes the index: a live holder is named and
waited for, a dead one's lock is broken with a warning, ``--break-lock`` takes any."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import Ama
from tests.e2e.test_plumbing_cli import build_golden, put

HOLD = """
import sys
from ama.plumbing.index import locked
with locked(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
"""


@pytest.fixture
def holder(ama: Ama) -> Iterator[subprocess.Popen[str]]:
    """Another process that holds the index's lock, through the plumbing's own lock."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(ama.cwd / ".ama" / "index")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()


def test_every_index_writer_refuses_while_another_process_holds_the_lock(
        ama: Ama, holder: subprocess.Popen[str]) -> None:
    lock = ama.cwd / ".ama" / "index.lock"
    index = ama.cwd / ".ama" / "index"
    put(ama.cwd, "new.txt", "new\n")
    before = index.read_bytes() if index.exists() else None
    for args in [("update-index", "--add", "new.txt"), ("update-index", "--refresh"),
                 ("checkout-index", "-a")]:
        failed = ama.fails(1, *args)
        assert (f"ama: error: the index is locked by running process {holder.pid} ({lock})"
                in failed.err), args
        assert "--break-lock" in failed.err
        assert (index.read_bytes() if index.exists() else None) == before
    assert lock.read_text() == f"{holder.pid} {socket.gethostname()}\n"  # never broken


def test_read_tree_and_checkout_index_refuse_while_the_lock_is_held(ama: Ama) -> None:
    built = build_golden(ama)
    staged = (ama.cwd / ".ama" / "index").read_bytes()
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(ama.cwd / ".ama" / "index")],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        (ama.cwd / "sub" / "hello.txt").unlink()
        failed = ama.fails(1, "read-tree", built.tree)
        assert f"locked by running process {proc.pid}" in failed.err
        failed = ama.fails(1, "checkout-index", "-a")
        assert f"locked by running process {proc.pid}" in failed.err
        assert not (ama.cwd / "sub" / "hello.txt").exists()
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait()
    assert (ama.cwd / ".ama" / "index").read_bytes() == staged
    ama.ok("checkout-index", "-a")
    assert (ama.cwd / "sub" / "hello.txt").read_bytes() == b"hello\n"


def test_a_lock_left_by_a_dead_process_is_broken_with_a_warning(ama: Ama) -> None:
    lock = ama.cwd / ".ama" / "index.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    lock.write_text(f"{pid} {socket.gethostname()}\n")
    put(ama.cwd, "new.txt", "new\n")
    result = ama("update-index", "--add", "new.txt")
    assert result.code == 0, result.err
    assert result.err == (f"ama: warning: removed the lock on the index left by process {pid}, "
                          f"which is no longer running ({lock})\n")
    assert ama.ok("ls-files") == "new.txt" and not lock.exists()


def test_a_lock_from_another_host_needs_break_lock(ama: Ama) -> None:
    lock = ama.cwd / ".ama" / "index.lock"
    lock.write_text("4242 elsewhere.example\n")
    put(ama.cwd, "new.txt", "new\n")
    failed = ama.fails(1, "update-index", "--add", "new.txt")
    assert f"the index is locked by process 4242 on elsewhere.example ({lock})" in failed.err
    assert "ama --break-lock" in failed.err
    result = ama("--break-lock", "update-index", "--add", "new.txt")
    assert result.code == 0, result.err
    assert "removed the lock on the index left by process 4242 on elsewhere.example" \
        in result.err
    assert ama.ok("ls-files") == "new.txt" and not lock.exists()


def test_break_lock_takes_a_lock_a_live_process_holds(
        ama: Ama, holder: subprocess.Popen[str]) -> None:
    put(ama.cwd, "new.txt", "new\n")
    result = ama("--break-lock", "update-index", "--add", "new.txt")
    assert result.code == 0, result.err
    assert f"left by process {holder.pid} on {socket.gethostname()}" in result.err
    assert ama.ok("ls-files") == "new.txt"
