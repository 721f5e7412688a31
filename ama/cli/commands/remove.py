"""ama remove: unstage files and delete them from the asset directory."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import emit_json, json_option, note, open_asset, quiet_option


@command(
    "remove",
    examples=[
        ("Remove a file from the asset (and from disk):", "ama remove old.csv"),
        ("Stop tracking a folder but keep its files:", "ama remove --keep scratch/"),
    ],
    see_also=["ama-add(1)", "ama-discard(1)", "ama-status(1)"],
    exit_codes={0: "success", 1: "files with changes that are not staged (use -f)",
                2: "bad usage", 3: "a path with nothing staged below it"},
)
@click.argument("paths", nargs=-1, required=True, metavar="PATH…")
@click.option("--keep", is_flag=True,
              help="Only unstage: leave the files in the directory, as untracked files.")
@click.option("-f", "--force", is_flag=True,
              help="Delete files even if their changes are not staged.")
@quiet_option
@json_option
def command(paths: tuple[str, ...], keep: bool, force: bool, quiet: bool,
            as_json: bool) -> None:
    """Remove the staged files below each PATH from the asset: unstage them and delete them
    from the directory (folders left empty go too). The next upload records them as gone;
    earlier versions keep them. A file whose changes are not staged is refused unless -f.
    """
    from ama.porcelain.remove import remove

    result = remove(open_asset(), list(paths), keep=keep, force=force)
    if as_json:
        emit_json(result.to_json())
        return
    note(f"{len(result.unstaged)} unstaged, {len(result.deleted)} deleted", quiet)
