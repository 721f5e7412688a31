"""Work split across processes where threads cannot help.

Checking the stat of 100,000 staged files is one system call and one Python object per file:
the interpreter, not the kernel, is the bottleneck, so threads only take turns (git runs its
``lstat`` calls on threads; Python cannot). :func:`forked` runs one part of such work in a
forked child process while the caller does the rest, which halves the time on two cores.
The child only computes and sends its result back through a pipe; it changes nothing.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Below this many items, starting a process costs more than it saves.
PARALLEL_FROM = 20_000


def can_fork() -> bool:
    """Whether forking is possible and safe here: several cores, and no other thread that
    could hold a lock the child would inherit locked."""
    return (hasattr(os, "fork") and (os.cpu_count() or 1) > 1
            and threading.active_count() == 1)


def forked(work: Callable[[], T]) -> Callable[[], T]:
    """Start ``work()`` in a forked child and return a function that waits for its result.

    The result travels back pickled. When forking is not possible or safe (see
    :func:`can_fork`), or the child fails in any way, ``work()`` runs in this process
    instead, when the result is asked for, so the caller always gets the same answer.
    """
    if not can_fork():
        return work
    read_end, write_end = os.pipe()
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
            data = pickle.dumps(work(), protocol=pickle.HIGHEST_PROTOCOL)
            with os.fdopen(write_end, "wb") as out:
                out.write(data)
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)

    def result() -> T:
        with os.fdopen(read_end, "rb") as incoming:
            data = incoming.read()
        _pid, status = os.waitpid(pid, 0)
        if status == 0:
            with contextlib.suppress(Exception):
                return pickle.loads(data)  # type: ignore[no-any-return]
        return work()

    return result
