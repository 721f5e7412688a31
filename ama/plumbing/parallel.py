"""Work split across processes where threads cannot help.

Checking the stat of 100,000 staged files is one system call and one Python object per file:
the interpreter, not the kernel, is the bottleneck, so threads only take turns (git runs its
``lstat`` calls on threads; Python cannot). :func:`forked` runs one part of such work in a
forked child process while the caller does the rest, which halves the time on two cores;
callers cut their work into :func:`shares`, one per core this process may run on
(:func:`workers`), and fork a child for each share but their own.
The child only computes and sends its result back through a pipe; it changes nothing.

What a fork costs in safety, and how each cost is paid:

- A child inherits every lock in the state it was in, but only the forking thread: a lock
  another thread held stays held forever in the child. So no fork while another Python
  thread runs (:func:`can_fork`).
- Native thread pools are threads Python does not count. BLAKE3 hashes a large file on a
  pool of its own (``max_threads=AUTO``, for files of 1 MiB and more); in a child of a
  process that used it, the pool's threads are gone while its state says they run, and
  hashing hangs forever. :mod:`ama.plumbing.hashing` keeps track with an
  ``os.register_at_fork`` hook (so in any forked child, ours or not) and hashes on one
  thread (``max_threads=1``) in a child whose parent had started the pool.
- A child must not outlive its parent: one killed half-way through placing files would go
  on writing into the work tree behind the user's back. On Linux the child asks the kernel
  to kill it when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and checks that its parent
  is still the one that forked it (it may have died before the request); elsewhere a thread
  of the child watches its parent pid.
- The parent never waits forever: a child that has not answered long after the parent
  finished its own share (:func:`forked`'s ``timeout``) is killed and its work is done in
  the parent, as for a child that failed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import select
import signal
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Below this many items, starting a process costs more than it saves.
PARALLEL_FROM = 20_000
# A child may take this much longer than its parent took for its own share (the shares are
# about equal) before it is taken for stuck; and never less than MIN_WAIT seconds.
SLOWER = 4
MIN_WAIT = 60.0
_PR_SET_PDEATHSIG = 1

def workers() -> int:
    """How many processes can run at once here: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity on this platform
        return os.cpu_count() or 1


def shares(count: int, parts: int, first: float = 1.0) -> list[tuple[int, int]]:
    """Cut ``range(count)`` into ``parts`` contiguous ``(start, stop)`` shares; the first,
    the caller's own, weighs ``first`` against 1 for each of the others (less when the
    caller has more to do meanwhile)."""
    parts = max(1, min(parts, count)) if count else 1
    weights = [first] + [1.0] * (parts - 1)
    total = sum(weights)
    bounds = [0]
    acc = 0.0
    for w in weights[:-1]:
        acc += w
        bounds.append(int(count * acc / total))
    bounds.append(count)
    return list(zip(bounds, bounds[1:], strict=False))


def can_fork() -> bool:
    """Whether forking is possible and safe here: no other thread that could hold a lock
    the child would inherit locked."""
    return hasattr(os, "fork") and threading.active_count() == 1


def forked(work: Callable[[], T], timeout: float | None = None) -> Callable[[], T]:
    """Start ``work()`` in a forked child and return a function that waits for its result.

    The result travels back pickled. When forking is not possible or safe (see
    :func:`can_fork`), or the child fails in any way, ``work()`` runs in this process
    instead, when the result is asked for, so the caller always gets the same answer. The
    wait for the child lasts at most ``timeout`` seconds from when the result is asked for
    (default: :data:`SLOWER` times as long as it took the caller to ask, at least
    :data:`MIN_WAIT`); then the child is killed and ``work()`` runs here.
    """
    if not can_fork():
        return work
    read_end, write_end = os.pipe()
    parent = os.getpid()
    started = time.monotonic()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return work
    if pid == 0:  # the child: compute, send, leave without running any cleanup
        status = 1
        try:
            os.close(read_end)
            _die_with(parent)
            data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)

    def result() -> T:
        wait = timeout
        if wait is None:
            wait = max(MIN_WAIT, SLOWER * (time.monotonic() - started))
        data = _read_until(read_end, time.monotonic() + wait)
        if data is None:  # stuck: it will never answer
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _pid, status = os.waitpid(pid, 0)
        if data is not None and status == 0:
            with contextlib.suppress(Exception):
                return pickle.loads(data)  # type: ignore[no-any-return]
        return work()

    return result


def _read_until(fd: int, deadline: float) -> bytes | None:
    """Everything up to the end of the pipe ``fd`` (then closed), or None when the end does
    not come before ``deadline``."""
    chunks: list[bytes] = []
    poller = select.poll()  # not select(): descriptors past 1023 are fine
    poller.register(fd, select.POLLIN)
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(left * 1000):
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def _die_with(parent: int) -> None:
    """Make this child end when ``parent`` does (see the module docstring)."""
    libc = None
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl  # noqa: B018 - probe that the symbol exists (Linux)
    if libc is not None and libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
        if os.getppid() != parent:  # it died before the request: nobody waits for us
            os._exit(1)
        return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
