"""ama discard: throw changes away, restoring bytes from the store."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import emit_json, json_option, note, open_asset, quiet_option


@command(
    "discard",
    examples=[
        ("Undo edits to a file since it was staged:", "ama discard config.yaml"),
        ("Go back to the last uploaded version everywhere:", "ama discard --staged --all"),
    ],
    see_also=["ama-status(1)", "ama-add(1)", "ama-remove(1)"],
    exit_codes={0: "success, also when the files named have no changes to discard",
                2: "bad usage", 3: "a path below which nothing is staged, or a needed object "
                "that is not in the store"},
)
@click.argument("paths", nargs=-1, metavar="PATH…")
@click.option("--staged", is_flag=True,
              help="Also unstage: go back to the last uploaded version's files.")
@click.option("-a", "--all", "all_", is_flag=True, help="Discard in the whole directory.")
@quiet_option
@json_option
def command(paths: tuple[str, ...], staged: bool, all_: bool, quiet: bool,
            as_json: bool) -> None:
    """Throw away changes to the files below each PATH; this cannot be undone.

    Without --staged, each staged file that was edited or deleted gets its staged bytes
    back from the store. With --staged, the staging goes back to the version last
    uploaded too: files staged since are unstaged (and kept, untracked) and the others get
    that version's bytes back. Untracked files are never touched.
    """
    from ama.porcelain.discard import discard

    if all_ == bool(paths):
        raise click.UsageError("name the paths to discard, or pass --all (not both)")
    result = discard(open_asset(), None if all_ else list(paths), staged=staged)
    if as_json:
        emit_json(result.to_json())
        return
    if not result.restored and not result.unstaged:
        note("Nothing to discard: the files named have no changes", quiet)
        return
    note(f"{len(result.restored)} restored, {len(result.unstaged)} unstaged", quiet)
