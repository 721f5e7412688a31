"""What the porcelain commands share: opening the asset directory, progress on a terminal,
JSON output and the -q/--json options."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

# (files done, files total[, bytes done, bytes total][, phase=NAME]): see progress()
Progress = Callable[..., None]


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as one JSON object on stdout.")(f)


def json_array_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` for listings, which print an array (one element per item listed)."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print the result as one JSON array on stdout.")(f)


def quiet_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("-q", "--quiet", is_flag=True,
                        help="Print no progress and no summary.")(f)


def emit_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


def open_asset():  # type: ignore[no-untyped-def]
    from ama.porcelain.asset import Asset

    return Asset.open()


# Seconds between two frames of a bar: twelve a second, so that with the jitter of the
# calls that draw them a moving bar still shows at least ten.
FRAME = 1 / 12


@contextlib.contextmanager
def progress(label: str, enabled: bool = True) -> Iterator[Progress | None]:
    """Yield a ``(done, total[, done_bytes, total_bytes][, phase=NAME])`` callback drawing a
    bar on stderr, or None when stderr is not a terminal or ``enabled`` is false (with -q
    or --json).

    Commands call it with ``(0, total, 0, total_bytes)`` as soon as they know the totals,
    so the first frame shows them, and again as files (and bytes of large files) are done.
    Before that, ``(counted, 0[, counted_bytes, 0])`` shows the files (and bytes) counted
    so far. ``phase`` names a step
    after the command's own work ("placing files"): the bar starts again from its totals.
    A phase called with a total of 0 is one long wait in the kernel (a disk sync): the bar
    shows its elapsed time until the next call, which ends it.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    import threading
    import time

    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    from ama.plumbing.hashing import MAP_WINDOW

    # Redrawn from the callback, not by rich's refresh thread: a command with no thread of
    # its own may split its work with a forked child (ama.plumbing.parallel), which a live
    # thread rightly prevents. Commands call back at least every MiB or so of work, which
    # is many times a second; the bar draws a frame every FRAME seconds of those. The one
    # exception is a wait in a single system call (a disk sync), where no call comes: a
    # thread redraws then, and is joined at the next call, before anything can fork.
    with Bar("[progress.description]{task.description}", BarColumn(),
             TextColumn("{task.fields[files]}"), TextColumn("{task.fields[size]}"),
             TimeElapsedColumn(), console=Console(stderr=True), transient=True,
             auto_refresh=False) as bar:
        # Until the command has counted its work, the bar says so rather than "0/?".
        task = bar.add_task(label, total=None, files="counting…", size="")
        bar.refresh()
        lock = threading.RLock()  # commands call back from their transfer threads
        drawn = 0.0
        first = True  # no frame yet with the totals
        drawn_bytes = 0
        start = time.monotonic()
        known_bytes = 0  # the bytes total once a command has given it
        shown_phase: str | None = None
        waiting: tuple[threading.Thread, threading.Event, float] | None = None
        paused: tuple[str | None, float] | None = None  # a wait ended: its step, its start

        def wait_frames(stop: threading.Event, began: float) -> None:
            while not stop.wait(FRAME):
                with lock:
                    bar.update(task, files=f"{time.monotonic() - began:.1f} s")
                    bar.refresh()

        def _wait(began: float) -> tuple[threading.Thread, threading.Event, float]:
            """A thread drawing a wait's elapsed time from ``began`` until it is stopped."""
            stop = threading.Event()
            thread = threading.Thread(target=wait_frames, args=(stop, began), daemon=True)
            thread.start()
            return thread, stop, began

        def update(done: int, total: int, done_bytes: int | None = None,
                   total_bytes: int | None = None, *, phase: str | None = None) -> None:
            nonlocal drawn, first, drawn_bytes, known_bytes, start, shown_phase, waiting
            nonlocal paused
            with lock:
                ended, waiting = waiting, None
            if ended is not None:  # joined outside the lock, which its frames take
                ended[1].set()
                ended[0].join()
                if phase == shown_phase:
                    # The call that ends a wait: the next step draws itself. The same
                    # wait may go on after a fork (a store's renames): its clock goes on.
                    paused = (phase, ended[2])
                    return
            now = time.monotonic()
            resumed, paused = paused, None
            with lock:
                if phase is not None and total == 0 and resumed is not None \
                        and resumed[0] == phase:
                    waiting = _wait(resumed[1])
                    return
                if phase != shown_phase:
                    # A new step: its own totals, rate, clock and description.
                    shown_phase = phase
                    known_bytes = 0
                    first = True
                    drawn = 0.0  # drawn at once, whatever the last step drew
                    bar.update(task, description=label if phase is None
                               else f"{label}: {phase}", completed=0, files="", size="")
                    # No total until this step gives one, and its own clock (rich's
                    # reset and add_task would draw a frame of their own, blank).
                    step = next(t for t in bar.tasks if t.id == task)
                    step.total, step.start_time = None, bar.get_time()
                    if phase is not None and total == 0:
                        bar.refresh()
                        waiting = _wait(time.monotonic())
                        return
                if not total:
                    # Still counting: the files (and bytes) seen so far, a frame every
                    # FRAME seconds.
                    if now - drawn >= FRAME:
                        drawn = now
                        bar.update(task, files=f"counting… {done:,} files",
                                   size="" if done_bytes is None else _size(done_bytes))
                        bar.refresh()
                    return
                if total_bytes is not None:
                    if not known_bytes:
                        start = now  # the rate is of the transfer, not of the counting
                    known_bytes = total_bytes
                files = f"{done:,}/{total:,} files"
                if known_bytes and done_bytes is not None:
                    # The bar follows bytes when they are known: one large file is most
                    # of the work of a few.
                    size = f"{_size(done_bytes)}/{_size(known_bytes)}"
                    elapsed = now - start
                    if done_bytes and elapsed >= 0.5:  # no rate until there is one
                        size += f"  {_size(int(done_bytes / elapsed))}/s"
                    bar.update(task, completed=done_bytes, total=known_bytes, files=files,
                               size=size)
                elif known_bytes:
                    # A call with files only (a caller that counts objects) keeps the bytes.
                    bar.update(task, files=files)
                else:
                    bar.update(task, completed=done, total=total, files=files, size="")
                # A frame every FRAME seconds, plus the first and the last, plus one a
                # sixteenth of the bytes (at least a hashing window) so that a short
                # command still shows the bar move. A frame costs a millisecond or two of
                # rendering, and calls come every MiB: drawing on each call would cost a
                # second or two a GiB.
                if (now - drawn >= FRAME or done >= total or first
                        or (done_bytes or 0) - drawn_bytes
                        >= max(MAP_WINDOW, known_bytes >> 4)):
                    drawn = now
                    first = False
                    drawn_bytes = done_bytes or 0
                    bar.refresh()

        try:
            yield update
        finally:
            if waiting is not None:
                waiting[1].set()
                waiting[0].join()


def _size(n: int) -> str:
    """A byte count in binary units, one decimal: 1.2 GiB (bytes below a KiB)."""
    if n < 1024:
        return f"{n:,} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
    return f"{value:.1f} GiB"


def note(text: str, quiet: bool = False) -> None:
    """A diagnostic line on stderr (silenced by -q)."""
    if not quiet:
        click.echo(text, err=True)
