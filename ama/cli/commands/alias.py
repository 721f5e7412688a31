"""ama alias: give an asset a human name within its class, move it, or remove it."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._metadata import (
    METADATA_EXIT_CODES,
    asset_option,
    remote_option,
    target,
)
from ama.cli.commands._porcelain import emit_json, json_option, note, quiet_option


@group(
    "alias",
    examples=[
        ("Call the asset of the current directory ml-models/prod-resnet:",
         "ama alias add prod-resnet"),
        ("Point the alias at another asset (it moves; the change is audited):",
         "ama alias add prod-resnet --asset ml-models/2"),
        ("Clone by alias:", "ama clone ml-models/prod-resnet"),
        ("Remove it:", "ama alias remove prod-resnet"),
    ],
    see_also=["ama-find(1)", "ama-info(1)", "ama-list(1)"],
    exit_codes=METADATA_EXIT_CODES,
)
def command() -> None:
    """Add, list and remove aliases: human names for an asset, unique within its class
    (ml-models/prod-resnet names one asset of ml-models). An alias is 1 to 63 of a-z, 0-9,
    '.', '_', '-', never all digits and never starting with 'temp_'. Adding an alias that
    names another asset of the class moves it. The remote records who changed which alias
    and when.
    """


@command.command("add", examples=[("Name the asset of this directory:",
                                   "ama alias add prod-resnet"),
                                  ("Name another asset:",
                                   "ama alias add baseline --asset ml-models/2"),
                                  ("Move prod only if it still names ml-models/1 (a script "
                                   "racing another):",
                                   "ama alias add prod --asset ml-models/2 "
                                   "--expect ml-models/1")])
@click.argument("alias")
@asset_option
@click.option("--expect", metavar="CLASS/ORDINAL|none",
              help="Move the alias only if it names this asset now ('none': only if it does "
                   "not exist yet); otherwise fail, naming where it points.")
@remote_option
@json_option
@quiet_option
def add(alias: str, asset_name: str | None, expect: str | None, remote: str | None,
        as_json: bool, quiet: bool) -> None:
    """Make ALIAS name the asset (moving it if it named another asset of the class). With
    --expect the move is a compare-and-swap on the remote: of two scripts moving the same
    alias from the same asset, one wins and the other fails (exit 1)."""
    from ama.porcelain.alias import add_alias, check_alias

    check_alias(alias)
    where, ref = target(asset_name, remote)
    result = add_alias(where, ref, alias, expect)
    if as_json:
        emit_json(result)
        return
    if result["moved_from"]:
        note(f"moved {result['class']}/{alias} from {result['moved_from']}", quiet)
    click.echo(f"{result['class']}/{alias} -> {result['name']}")


@command.command("remove", examples=[("Remove an alias of this directory's asset:",
                                      "ama alias remove prod-resnet")])
@click.argument("alias")
@asset_option
@remote_option
@json_option
def remove(alias: str, asset_name: str | None, remote: str | None, as_json: bool) -> None:
    """Remove ALIAS, which must name the asset."""
    from ama.porcelain.alias import check_alias, remove_alias

    check_alias(alias)
    where, ref = target(asset_name, remote)
    result = remove_alias(where, ref, alias)
    if as_json:
        emit_json(result)
    else:
        click.echo(f"removed {result['class']}/{alias} (was {result['name']})")


@command.command("list", examples=[("Aliases of this directory's asset:", "ama alias list")])
@asset_option
@remote_option
@json_option
def list_(asset_name: str | None, remote: str | None, as_json: bool) -> None:
    """List the aliases of the asset, one CLASS/ALIAS a line."""
    where, ref = target(asset_name, remote)
    record = where.transport.asset(where.project, ref.cls, ref.asset)
    names = [f"{record['class']}/{a}" for a in record.get("aliases") or []]
    if as_json:
        emit_json({"name": record["name"], "aliases": record.get("aliases") or []})
    else:
        for n in names:
            click.echo(n)
