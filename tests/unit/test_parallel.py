"""Work split with forked children: the same answer as in one process, whatever happens.

The checks that fork run in a fresh interpreter, single-threaded as a command is: a test
process may hold threads of its own (pytest-xdist's workers do), which rightly stop any fork.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.index import Index, IndexEntry, changes, stat_differs
from ama.plumbing.parallel import can_fork, forked, shares


def _in_fresh_interpreter(code: str, timeout: float = 60) -> str:
    """Run ``code`` in a new interpreter, after checking that it may fork; return what it
    prints."""
    done = subprocess.run([sys.executable, "-c", "from ama.plumbing.parallel import can_fork\n"
                           "assert can_fork()\n" + textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=timeout, check=True)
    return done.stdout.strip()


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


def test_a_child_that_fails_leaves_no_temp_files_and_its_error_is_raised(
        tmp_path: Path) -> None:
    printed = _in_fresh_interpreter(f"""
        import os
        from ama.plumbing.odb import FileObjectDatabase
        odb = FileObjectDatabase({str(tmp_path / "objects")!r})
        here = os.getpid()
        ran = []
        def work():
            ran.append(os.getpid())
            odb.write(b"written before the failure")
            return odb.write_file({str(tmp_path / "not-there")!r})
        try:
            with odb.batch():
                theirs = odb.in_child(work)
                odb.write(b"the parent's own")
                theirs()
        except FileNotFoundError:
            print("raised", ran == [here], list(odb) == [], odb.temp_files() == [])
    """)
    assert printed == "raised True True True"  # the child's failure, then the work here


def test_hashing_a_large_file_in_a_child_after_the_parent_did(tmp_path: Path) -> None:
    # BLAKE3's own thread pool, started by the parent's hash, does not survive the fork:
    # a child using it hangs forever (and its parent with it).
    for name in ("first", "second"):
        (tmp_path / name).write_bytes(os.urandom(1 << 20) * 3)
    printed = _in_fresh_interpreter(f"""
        import os
        from ama.plumbing.hashing import hash_file
        from ama.plumbing.parallel import forked
        here = os.getpid()
        first = hash_file({str(tmp_path / "first")!r})
        pid, second = forked(lambda: (os.getpid(), hash_file({str(tmp_path / "second")!r})))()
        print(pid != here, first == hash_file({str(tmp_path / "first")!r}),
              second == hash_file({str(tmp_path / "second")!r}))
    """, timeout=40)
    assert printed == "True True True"


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended (a zombie no one reaped has ended too)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_child_dies_with_its_parent(tmp_path: Path) -> None:
    started = tmp_path / "child"
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, time
        from ama.plumbing.parallel import forked
        here = os.getpid()
        def work():
            if os.getpid() != here:
                with open({str(started)!r} + ".tmp", "w") as f:
                    f.write(str(os.getpid()))
                os.rename({str(started)!r} + ".tmp", {str(started)!r})
                time.sleep(3600)  # placing files for a long time, say
            return 0
        result = forked(work)
        print("forked", flush=True)
        time.sleep(3600)
    """)], stdout=subprocess.PIPE, text=True)
    child = 0
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "forked\n"
        for _ in range(3000):
            if started.exists():
                break
            threading.Event().wait(0.01)
        child = int(started.read_text())
        assert not _gone(child)
        parent.kill()
        parent.wait()
        for _ in range(3000):  # bounded: a child that outlives its parent fails the test
            if _gone(child):
                break
            threading.Event().wait(0.01)
        assert _gone(child)
    finally:
        parent.kill()
        parent.wait()
        if child and not _gone(child):
            os.kill(child, signal.SIGKILL)


def test_a_child_that_does_not_answer_is_killed_and_the_work_done_here() -> None:
    printed = _in_fresh_interpreter("""
        import os, time
        from ama.plumbing.parallel import forked
        here = os.getpid()
        def work():
            if os.getpid() != here:
                time.sleep(3600)  # stuck
            return os.getpid()
        result = forked(work, timeout=0.2)
        print(result() == here)
    """)
    assert printed == "True"


def test_shares_cover_the_work_once_in_order() -> None:
    assert shares(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert shares(10, 2, first=2 / 3) == [(0, 4), (4, 10)]
    assert shares(2, 8) == [(0, 1), (1, 2)]
    assert shares(0, 4) == [(0, 0)]
    assert shares(7, 1) == [(0, 7)]


def test_workers_are_the_cores_this_process_may_use() -> None:
    printed = _in_fresh_interpreter("""
        import os
        from ama.plumbing.parallel import workers
        print(workers() == len(os.sched_getaffinity(0)))
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
        print(workers())
    """)
    assert printed == "True\n1"
