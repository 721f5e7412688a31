"""ama update-index: stage files in the index, remove them, or refresh its stat cache."""

from __future__ import annotations

import os
import sys

import click

from ama.cli.command import Env, command, read_records
from ama.plumbing.errors import AmaError


class NeedsUpdate(AmaError):
    """Staged files whose content changed (``--refresh``)."""


@command(
    "update-index",
    examples=[
        ("Stage two files:", "ama update-index --add data/train.csv data/test.csv"),
        ("Stage every file below data/, NUL-separated:",
         "find data -type f -print0 | ama update-index --add --stdin -z"),
        ("Unstage a file that was deleted:", "ama update-index --remove old.csv"),
        ("Update the stat cache after a copy that kept the bytes:",
         "ama update-index --refresh"),
    ],
    see_also=["ama-ls-files(1)", "ama-write-tree(1)", "ama-hash-object(1)", "ama-format(5)"],
    exit_codes={0: "success", 1: "--refresh found files whose content changed",
                2: "bad usage, or a path that cannot be staged", 3: "a path does not exist"},
)
@click.option("--add", is_flag=True, help="Stage files that are not in the index yet.")
@click.option("--remove", is_flag=True, help="Unstage given files that no longer exist.")
@click.option("--force-remove", is_flag=True, help="Unstage given files even if they exist.")
@click.option("--refresh", is_flag=True,
              help="Re-check every staged file's stat, re-hashing only changed ones.")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the paths from stdin.")
@click.option("-z", "nul", is_flag=True, help="With --stdin: paths end with NUL.")
@click.argument("paths", nargs=-1)
def command(add: bool, remove: bool, force_remove: bool, refresh: bool, from_stdin: bool,
            nul: bool, paths: tuple[str, ...]) -> None:
    """Update the index of the asset directory with PATHs (relative to the current directory).

    A staged file is hashed and stored in the asset store, and recorded with its stat so
    later checks re-hash only files that changed. Without --add only files already staged
    are updated; with --remove a staged file that no longer exists is unstaged. A symbolic
    link is staged as a link when its target stays inside the asset, and refused otherwise.
    Every path is checked before anything is written: one bad path leaves the index and the
    store as they were.
    """
    from ama.plumbing.index import update_index

    env = Env()
    asset_dir = env.asset_dir
    names = list(paths)
    if from_stdin:
        names.extend(read_records(sys.stdin, nul))
    if not names and not refresh:
        raise click.UsageError("name the paths to update (or use --stdin or --refresh)")
    cwd = os.getcwd()
    stale = update_index(asset_dir.index_path, asset_dir.root, env.store.objects,
                         [(name, asset_dir.relpath(name, cwd)) for name in names],
                         add=add, remove=remove, force_remove=force_remove, refresh=refresh)
    if stale:
        for path in stale:
            click.echo(f"{path}: needs update")
        raise NeedsUpdate(f"{len(stale)} staged file(s) changed",
                          "stage them with 'ama update-index PATH'")
