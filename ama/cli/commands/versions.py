"""ama versions: list the versions of an asset."""

from __future__ import annotations

import click

from ama.cli.command import command, shown
from ama.cli.commands._metadata import complete_asset
from ama.cli.commands._porcelain import emit_json, json_array_option


@command(
    "versions",
    examples=[
        ("The versions of the asset here (* marks the one it holds):", "ama versions"),
        ("Of any asset:", "ama versions ml-models/1"),
    ],
    see_also=["ama-switch(1)", "ama-history(1)", "ama-fetch(1)"],
    exit_codes={0: "success", 2: "a malformed name",
                3: "no such asset, or the asset here was never uploaded",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("name", required=False, shell_complete=complete_asset)
@json_array_option
def command(name: str | None, as_json: bool) -> None:
    """List the versions of NAME (CLASS/ORDINAL or CLASS/ALIAS), or of the asset here,
    oldest first: version, time, author and message.

    The time, author and message are the ones the version's manifest records; with
    --json, "uploader" and "uploaded" add the account that uploaded it and when. An asset
    whose status is not active (see 'ama asset status') is named with its status on
    standard error first.

    With --json: a list of {"name", "version", "manifest", "parent", "created", "author",
    "author_email", "message", "current", "uploader", "uploaded", "status"} ("status":
    the asset's).
    """
    from ama.porcelain.asset import Asset
    from ama.porcelain.versions import versions

    listed = versions(name if name else Asset.open())
    if as_json:
        emit_json([v.to_json() for v in listed])
        return
    if listed and listed[0].status != "active":
        click.echo(f"note: {listed[0].name} is {listed[0].status}", err=True)
    for v in listed:
        mark = "*" if v.current else " "
        click.echo(shown(f"{mark} {v.version}\t{v.created or ''}\t{v.author or ''}\t"
                         f"{v.message or ''}"))
