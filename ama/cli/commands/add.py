"""ama add: stage new and changed files."""

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
    "add",
    examples=[
        ("Stage everything in the asset directory:", "ama add ."),
        ("Stage one folder and one file:", "ama add data/ config.yaml"),
    ],
    see_also=["ama-status(1)", "ama-update(1)", "ama-remove(1)", "ama-discard(1)"],
    exit_codes={0: "success", 2: "bad usage, an excluded file, a special file, a bad name or "
                                 "a symbolic link leaving the asset",
                3: "a path that does not exist, or not an asset directory"},
)
@click.argument("paths", nargs=-1, required=True, metavar="PATH…")
@click.option("--follow-symlinks", is_flag=True,
              help="Stage the file a symbolic link leaving the asset points at, as a file.")
@click.option("--skip-symlinks", is_flag=True, help="Leave every symbolic link out.")
@quiet_option
@json_option
def command(paths: tuple[str, ...], follow_symlinks: bool, skip_symlinks: bool, quiet: bool,
            as_json: bool) -> None:
    """Stage the files below each PATH ('.' for the whole directory): new files, files
    whose content changed, and the removal of staged files that were deleted.

    Each file's bytes are stored in the asset store and recorded in the index with its stat,
    so only files that change are read again. Files matched by .amaignore are skipped.
    FIFOs, sockets and devices are refused, naming each: nothing is staged until every
    path is fine.

    A symbolic link whose target stays inside the asset (relative, normalised, not
    through .ama) is staged as a link, dangling or to a folder alike, and checked out as
    one. A link leaving the asset is refused, naming each, unless --follow-symlinks
    stages the file it points at instead, or --skip-symlinks leaves all links out.

    With the hardlink link strategy (ama config set link.strategy hardlink) a plain file
    that has no other hard link is not copied: the file itself becomes its store object by
    a hard link and turns read-only (0444). It is then part of the store, shared with every
    hardlink checkout of it: edit it by replacing it (as most editors save), never by
    making it writable and writing into it. ama status reports such a file as modified
    if its bytes change anyway, and ama store verify finds the damaged object.
    """
    from ama.plumbing.errors import BadInput
    from ama.porcelain.add import add

    if follow_symlinks and skip_symlinks:
        raise BadInput("--follow-symlinks and --skip-symlinks cannot be given together")
    links = "follow" if follow_symlinks else "skip" if skip_symlinks else "record"
    asset = open_asset()
    with progress("Staging", not (quiet or as_json)) as bar:
        result = add(asset, list(paths), progress=bar, links=links)
    if as_json:
        emit_json(result.to_json())
        return
    if result.skipped:
        note(f"{len(result.skipped)} symbolic link(s) left out (--skip-symlinks)", quiet)
    restored = (f", {len(result.restored)} stored again (their objects had gone from the "
                "store)" if result.restored else "")
    note(f"{len(result.new)} new, {len(result.modified)} modified, "
         f"{len(result.removed)} removed{restored}", quiet)
