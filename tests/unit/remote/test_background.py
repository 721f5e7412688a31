"""The background of a server worker: each project's jobs in a queue of their own, at most
a few of one project and a few more in all at once, projects taking turns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ama_remote.service.multipart import _Background


class _Jobs:
    """Jobs that each wait for their own release, noting when they began."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.began: list[str] = []
        self.release: dict[str, threading.Event] = {}
        self.ended: list[str] = []

    def job(self, name: str) -> Callable[[], None]:
        self.release[name] = threading.Event()

        def run() -> None:
            with self.lock:
                self.began.append(name)
            assert self.release[name].wait(10)
            with self.lock:
                self.ended.append(name)

        return run

    def running(self, count: int) -> list[str]:
        """The jobs begun and not ended, once ``count`` are (or two seconds went by)."""
        for _ in range(200):
            with self.lock:
                now = [n for n in self.began if n not in self.ended]
            if len(now) >= count:
                break
            time.sleep(0.01)
        time.sleep(0.05)  # and no more begin meanwhile
        with self.lock:
            return sorted(n for n in self.began if n not in self.ended)

    def end(self, name: str) -> None:
        self.release[name].set()


def test_one_project_runs_at_most_its_share_and_another_begins_beside_it() -> None:
    background, jobs = _Background(per_project=2, total=3), _Jobs()
    for n in range(5):
        background.submit(1, jobs.job(f"a{n}"))
    assert jobs.running(2) == ["a0", "a1"]  # its share, though threads are free
    background.submit(2, jobs.job("b0"))
    assert jobs.running(3) == ["a0", "a1", "b0"]  # not behind a2..a4
    background.submit(3, jobs.job("c0"))
    assert jobs.running(3) == ["a0", "a1", "b0"]  # three in all: c0 waits
    jobs.end("a0")
    # The thread freed takes a job of the project running fewest: c0, not a2.
    assert jobs.running(3) == ["a1", "b0", "c0"]
    for name in ["a1", "b0", "c0"]:
        jobs.end(name)
    assert jobs.running(2) == ["a2", "a3"]
    for name in ["a2", "a3", "a4"]:
        jobs.end(name)
    for _ in range(200):
        if len(jobs.ended) == 7:
            break
        time.sleep(0.01)
    assert sorted(jobs.ended) == ["a0", "a1", "a2", "a3", "a4", "b0", "c0"]
    for _ in range(200):  # and every thread ends with nothing left to run
        if background._threads == 0:
            break
        time.sleep(0.01)
    assert (background._threads, background._running, background._queued) == (0, {}, {})


def test_a_job_that_fails_frees_its_place() -> None:
    background, jobs = _Background(per_project=1, total=1), _Jobs()

    def fails() -> None:
        raise RuntimeError("storage unreachable")

    background.submit(1, fails)
    background.submit(1, jobs.job("next"))
    assert jobs.running(1) == ["next"]
    jobs.end("next")
