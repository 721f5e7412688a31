"""ama update: re-stage tracked files that changed."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import (
    emit_json,
    json_option,
    note,
    open_asset,
    progress,
    quiet_option,
)


@command(
    "update",
    examples=[
        ("Stage the new content of one file:", "ama update model.pt"),
        ("Stage every change to staged files:", "ama update --all"),
    ],
    see_also=["ama-add(1)", "ama-status(1)"],
    exit_codes={0: "success", 2: "bad usage", 3: "a path with nothing staged below it"},
)
@click.argument("paths", nargs=-1, metavar="PATH…")
@click.option("-a", "--all", "all_", is_flag=True, help="Update every staged file.")
@quiet_option
@json_option
def command(paths: tuple[str, ...], all_: bool, quiet: bool, as_json: bool) -> None:
    """Stage the current content of staged files below each PATH that changed, and
    unstage those that were deleted. New files are left alone ('ama add' stages them)."""
    from ama.porcelain.update import update

    if all_ == bool(paths):
        raise click.UsageError("name the files to update, or pass --all (not both)")
    asset = open_asset()
    with progress("Updating", not (quiet or as_json)) as bar:
        result = update(asset, None if all_ else list(paths), progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    note(f"{len(result.modified)} modified, {len(result.removed)} removed", quiet)
