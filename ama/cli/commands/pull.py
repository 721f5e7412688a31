"""ama pull: bring the asset directory to the latest version on its remote."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import json_option, open_asset, progress, quiet_option
from ama.cli.commands.switch import report


@command(
    "pull",
    examples=[
        ("Bring the asset here to the latest version a teammate uploaded:", "ama pull"),
        ("Throw away changes that were not uploaded while doing so:", "ama pull --force"),
    ],
    see_also=["ama-switch(1)", "ama-versions(1)", "ama-status(1)"],
    exit_codes={0: "success, also when the directory holds the latest version already",
                1: "files changed here are not uploaded (see --force)",
                3: "the asset was never uploaded, or this is not an asset directory",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.option("-f", "--force", is_flag=True, help="Overwrite changes that are not uploaded.")
@quiet_option
@json_option
def command(force: bool, quiet: bool, as_json: bool) -> None:
    """Switch this directory to the latest version of its asset, as the remote lists it
    now. Only the files that differ are fetched, written or deleted; untracked files stay.
    Changes not uploaded are refused unless --force."""
    from ama.porcelain.pull import pull

    asset = open_asset()
    with progress("Pulling", not (quiet or as_json)) as bar:
        result = pull(asset, force=force, progress=bar)
    report(result, "Pulled", f"{result.name} is at the latest version, {result.new}, already",
           quiet, as_json)
