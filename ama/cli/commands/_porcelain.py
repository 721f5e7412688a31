"""What the porcelain commands share: opening the asset directory, progress on a terminal,
JSON output and the -q/--json options."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

Progress = Callable[[int, int], None]


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
    """Yield a ``(done, total)`` callback drawing a bar on stderr, or None when stderr is not
    a terminal or ``enabled`` is false (with -q or --json)."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    # Redrawn from the callback, not by rich's refresh thread: a command with no thread of
    # its own may split its work with a forked child (ama.plumbing.parallel), which a live
    # thread rightly prevents.
    with Bar("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
             TimeElapsedColumn(), console=Console(stderr=True), transient=True,
             auto_refresh=False) as bar:
        task = bar.add_task(label, total=None)
        bar.refresh()
        drawn = 0.0

        def update(done: int, total: int) -> None:
            nonlocal drawn
            bar.update(task, completed=done, total=total)
            now = time.monotonic()
            if now - drawn >= 0.1 or done >= total:
                drawn = now
                bar.refresh()

        yield update


def note(text: str, quiet: bool = False) -> None:
    """A diagnostic line on stderr (silenced by -q)."""
    if not quiet:
        click.echo(text, err=True)
