"""ama fetch: bring versions and history from the remote, without file bytes."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._metadata import complete_asset
from ama.cli.commands._porcelain import emit_json, json_option, note, progress, quiet_option


@command(
    "fetch",
    examples=[
        ("Learn about new versions of the asset here:", "ama fetch"),
        ("One asset, every asset of a class, or everything:",
         "ama fetch ml-models/1; ama fetch --class ml-models; ama fetch --all"),
    ],
    see_also=["ama-versions(1)", "ama-switch(1)", "ama-history(1)"],
    exit_codes={0: "success", 2: "bad usage or a malformed name", 3: "no such asset or class",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("name", required=False, shell_complete=complete_asset)
@click.option("--class", "cls", metavar="CLASS", help="Fetch every asset of CLASS.")
@click.option("--all", "everything", is_flag=True, help="Fetch every asset of every class.")
@quiet_option
@json_option
def command(name: str | None, cls: str | None, everything: bool, quiet: bool,
            as_json: bool) -> None:
    """Fetch the versions, manifests and trees of NAME (CLASS/ORDINAL or CLASS/ALIAS), of
    every asset of a class, of everything, or (with no argument) of the asset here. File
    bytes are not fetched: 'ama switch' and 'ama download' bring those."""
    from ama.plumbing.errors import NotFound
    from ama.porcelain.asset import Asset
    from ama.porcelain.config import Config
    from ama.porcelain.fetch import fetch

    asset = None
    if not (name or cls or everything):
        try:
            asset = Asset.open()
        except NotFound:
            asset = None
    with progress("Fetching", not (quiet or as_json)) as bar:
        result = fetch(Config.open(), name, cls, everything, asset=asset, progress=bar)
    if as_json:
        emit_json(result.to_json())
        return
    for fetched in result.assets:
        click.echo(f"{fetched.name}\t{fetched.latest or '-'}\t{len(fetched.versions)} version(s)")
    note(f"{result.objects} object(s) fetched", quiet)
