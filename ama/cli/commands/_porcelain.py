"""What the porcelain commands share: opening the asset directory, progress on a terminal,
JSON output and the -q/--json options."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

# (files done, files total[, bytes done, bytes total])
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


@contextlib.contextmanager
def progress(label: str, enabled: bool = True) -> Iterator[Progress | None]:
    """Yield a ``(done, total[, done_bytes, total_bytes])`` callback drawing a bar on stderr,
    or None when stderr is not a terminal or ``enabled`` is false (with -q or --json).

    Commands call it with ``(0, total, 0, total_bytes)`` as soon as they know the totals,
    so the first frame shows them, and again as files (and bytes of large files) are done.
    """
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    from ama.plumbing.hashing import MAP_WINDOW

    # Redrawn from the callback, not by rich's refresh thread: a command with no thread of
    # its own may split its work with a forked child (ama.plumbing.parallel), which a live
    # thread rightly prevents. Commands call back at least every MiB or so of work, which
    # is many times a second; the bar draws ten frames a second of those.
    with Bar("[progress.description]{task.description}", BarColumn(),
             TextColumn("{task.fields[files]}"), TextColumn("{task.fields[size]}"),
             TimeElapsedColumn(), console=Console(stderr=True), transient=True,
             auto_refresh=False) as bar:
        # Until the command has counted its work, the bar says so rather than "0/?".
        task = bar.add_task(label, total=None, files="counting…", size="")
        bar.refresh()
        drawn = start_drawn = 0.0  # no frame yet with the totals
        drawn_bytes = 0
        start = time.monotonic()
        known_bytes = 0  # the bytes total once a command has given it

        def update(done: int, total: int, done_bytes: int | None = None,
                   total_bytes: int | None = None) -> None:
            nonlocal drawn, drawn_bytes, known_bytes, start
            now = time.monotonic()
            if total_bytes is not None:
                if not known_bytes:
                    start = now  # the rate is of the transfer, not of the counting before
                known_bytes = total_bytes
            files = f"{done:,}/{total:,} files"
            if known_bytes and done_bytes is not None:
                # The bar follows bytes when they are known: one large file is most of the
                # work of a few.
                size = f"{_size(done_bytes)}/{_size(known_bytes)}"
                elapsed = now - start
                if done_bytes and elapsed >= 0.5:  # no rate until there is one to show
                    size += f"  {_size(int(done_bytes / elapsed))}/s"
                bar.update(task, completed=done_bytes, total=known_bytes, files=files,
                           size=size)
            elif known_bytes:
                # A call with files only (a caller that counts objects) keeps the bytes shown.
                bar.update(task, files=files)
            else:
                bar.update(task, completed=done, total=total, files=files, size="")
            # Ten frames a second, plus the first and the last, plus one a sixteenth of
            # the bytes (at least a hashing window) so that a short command still shows
            # the bar move. A frame costs a millisecond or two of rendering, and calls come
            # every MiB: drawing on each call would cost a second or two a GiB.
            if (now - drawn >= 0.1 or done >= total or drawn == start_drawn
                    or (done_bytes or 0) - drawn_bytes >= max(MAP_WINDOW, known_bytes >> 4)):
                drawn = now
                drawn_bytes = done_bytes or 0
                bar.refresh()

        yield update


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
