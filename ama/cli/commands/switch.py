"""ama switch: make the asset directory hold another version."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ama.cli.command import command, positional_or_option
from ama.cli.commands._metadata import complete_version
from ama.cli.commands._porcelain import (
    emit_json,
    json_option,
    note,
    open_asset,
    progress,
    quiet_option,
)

if TYPE_CHECKING:
    from ama.porcelain.switch import SwitchResult


@command(
    "switch",
    examples=[
        ("Go back to the first version:", "ama switch 0.0.0"),
        ("Throw away changes that were not uploaded while switching:",
         "ama switch 0.0.2 --force"),
    ],
    see_also=["ama-versions(1)", "ama-fetch(1)", "ama-status(1)"],
    exit_codes={0: "success", 1: "files changed here are not uploaded (see --force)",
                2: "a malformed version", 3: "no such version, or not an asset directory",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("version_arg", metavar="VERSION", required=False,
                shell_complete=complete_version)
@click.option("--version", "version", help="The version to switch to (or give it as VERSION).")
@click.option("-f", "--force", is_flag=True, help="Overwrite changes that are not uploaded.")
@quiet_option
@json_option
def command(version_arg: str | None, version: str | None, force: bool, quiet: bool,
            as_json: bool) -> None:
    """Make this directory hold VERSION of its asset. Only the files that differ between
    the two versions are fetched, written or deleted; untracked files stay. Changes not
    uploaded are refused unless --force. A switch that was interrupted completes when run
    again."""
    from ama.porcelain.switch import switch

    version = positional_or_option(version_arg, version, "VERSION", "--version")
    asset = open_asset()
    with progress("Switching", not (quiet or as_json)) as bar:
        result = switch(asset, version, force=force, progress=bar)
    report(result, "Switched", f"{result.name} is at {result.new} already", quiet, as_json)


def report(result: SwitchResult, verb: str, unchanged: str, quiet: bool,
           as_json: bool) -> None:
    """Print what a switch (or a pull, which is one) did."""
    if as_json:
        emit_json(result.to_json())
    elif result.old == result.new:
        note(unchanged, quiet)
    else:
        note(f"{verb} {result.name} from {result.old} to {result.new}: "
             f"{len(result.written)} written, {len(result.deleted)} deleted", quiet)
