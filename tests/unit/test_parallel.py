"""Work split with a forked child: the same answer as in one process, whatever happens."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.index import Index, IndexEntry, changes, stat_differs
from ama.plumbing.parallel import can_fork, forked

needs_fork = pytest.mark.skipif(not can_fork(), reason="needs fork and two cores")


def _in_fresh_interpreter(code: str) -> str:
    """Run ``code`` in a new interpreter, single-threaded as a command is (a test process
    may hold threads of its own, which rightly stop any fork); return what it prints."""
    import subprocess
    import sys
    import textwrap

    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


@needs_fork
def test_forked_work_runs_in_a_child_and_its_result_comes_back() -> None:
    printed = _in_fresh_interpreter("""
        import os
        from ama.plumbing.parallel import forked
        here = os.getpid()
        result = forked(lambda: (os.getpid(), [("x", 1)] * 3, {"big": b"z" * 300_000}))
        pid, items, big = result()
        print(pid != here, items == [("x", 1)] * 3, big == {"big": b"z" * 300_000})
    """)
    assert printed == "True True True"


@needs_fork
def test_a_failing_child_means_the_work_is_done_here(tmp_path: Path) -> None:
    printed = _in_fresh_interpreter(f"""
        import os
        from ama.plumbing.parallel import forked
        here = os.getpid()
        def work():
            if os.getpid() != here:
                open({str(tmp_path / "child-ran")!r}, "w").close()
                raise RuntimeError("only in the child")
            return os.getpid()
        print(forked(work)() == here)
    """)
    assert printed == "True"
    assert (tmp_path / "child-ran").exists()  # the child did start, and failed


def test_no_fork_while_another_thread_runs() -> None:
    here = os.getpid()
    stop = threading.Event()
    other = threading.Thread(target=stop.wait)
    other.start()
    try:
        assert not can_fork()
        assert forked(os.getpid)() == here
    finally:
        stop.set()
        other.join()


def _tree_with_changes(root: Path) -> Index:
    index = Index(root / ".ama" / "index")
    for i in range(300):
        path = root / f"d{i % 7}" / f"f{i}"
        path.parent.mkdir(exist_ok=True)
        data = f"file {i}".encode()
        path.write_bytes(data)
        index.add(IndexEntry.from_stat(f"d{i % 7}/f{i}", hash_bytes(data), path.stat()))
    index.write()
    os.utime(index.path, ns=(4_000_000_000_000_000_000,) * 2)  # no entry is racy
    index = Index.read(index.path)
    (root / "d1" / "f1").write_bytes(b"other bytes")   # modified
    os.unlink(root / "d2" / "f100")                     # deleted
    os.unlink(root / "d3" / "f3")                       # a folder where a file was
    (root / "d3" / "f3").mkdir()
    os.utime(root / "d4" / "f4", ns=(1, 1))             # touched only
    return index


def test_the_split_check_finds_what_the_single_one_does(tmp_path: Path) -> None:
    index = _tree_with_changes(tmp_path)
    ran: list[int] = []
    single = stat_differs(index, tmp_path, split_at=10**9)
    split = stat_differs(index, tmp_path, meanwhile=lambda: ran.append(1), split_at=2)
    assert ran == [1]
    assert split == single
    assert [(e.path, None if st is None else st.st_mode >> 12) for e, st in single] == [
        ("d1/f1", 0o10), ("d2/f100", None), ("d3/f3", 0o04), ("d4/f4", 0o10)]
    selected = stat_differs(index, tmp_path, select=lambda p: p.startswith("d2/"), split_at=2)
    assert [e.path for e, _st in selected] == ["d2/f100"]
    assert [(c.state, c.entry.path) for c in changes(index, tmp_path)] == [
        ("modified", "d1/f1"), ("deleted", "d2/f100"), ("deleted", "d3/f3"),
        ("touched", "d4/f4")]


def test_objects_written_by_a_child_join_the_batch(tmp_path: Path) -> None:
    from ama.plumbing.odb import FileObjectDatabase

    odb = FileObjectDatabase(tmp_path / "objects")
    odb.split_at = 2  # the renames are split with a child too
    with odb.batch():
        theirs = odb.in_child(lambda: [odb.write(f"child {i}".encode()) for i in range(40)]
                              + [odb.write(b"both sides")])
        mine = [odb.write(f"parent {i}".encode()) for i in range(40)] + [odb.write(b"both sides")]
        child_ids = theirs()
        assert not odb.path(mine[0]).exists()  # nothing visible before the batch ends
    for oid in mine + child_ids:
        assert odb.get(oid)
    assert sorted(odb) == sorted(set(mine + child_ids))
    assert odb.temp_files() == []  # the duplicate's second temp file was removed


@needs_fork
def test_a_child_that_fails_leaves_no_temp_files_and_its_error_is_raised(
        tmp_path: Path) -> None:
    from ama.plumbing.odb import FileObjectDatabase

    odb = FileObjectDatabase(tmp_path / "objects")
    missing = tmp_path / "not-there"

    def work() -> str:
        odb.write(b"written before the failure")
        return odb.write_file(missing)

    with pytest.raises(FileNotFoundError), odb.batch():
        theirs = odb.in_child(work)
        odb.write(b"the parent's own")
        theirs()
    assert list(odb) == [] and odb.temp_files() == []
