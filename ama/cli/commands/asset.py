"""ama asset: set an asset's title, description, tags and status; delete and restore it."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._metadata import (
    METADATA_EXIT_CODES,
    asset_option,
    complete_asset,
    remote_option,
    target,
)
from ama.cli.commands._porcelain import emit_json, json_option


@group(
    "asset",
    examples=[
        ("Give the asset of the current directory a title and tags:",
         "ama asset set --title 'ResNet-50, ImageNet' --tag vision --tag resnet"),
        ("Add one tag, remove another:", "ama asset set --add-tag prod --remove-tag draft"),
        ("Describe another asset:",
         "ama asset set --asset ml-models/2 --description 'Baseline for the Q3 report'"),
        ("Clear the tags:", "ama asset set --clear-tags"),
        ("Mark another asset as deprecated:", "ama asset status deprecated --asset ml-models/2"),
        ("Delete an asset, then bring it back:",
         "ama asset delete ml-models/2 && ama asset restore ml-models/2"),
    ],
    see_also=["ama-info(1)", "ama-list(1)", "ama-alias(1)"],
    exit_codes=METADATA_EXIT_CODES,
)
def command() -> None:
    """Change what describes an asset as a whole: its title, description, tags and status,
    or delete it. They are kept by the remote, can change at any time, and every change is
    audited; a version's own metadata (ama upload --metadata) never changes. See them with
    'ama info'.

    An asset's status is active (the default), deprecated (still fine to use, but a newer
    asset should be preferred) or obsolete (should no longer be used); 'ama list', 'ama
    info' and 'ama versions' show it. A deleted asset is hidden: it is not listed, and its
    versions cannot be listed, cloned or added to, until it is restored; its objects stay
    on the remote meanwhile, and its aliases stay taken.
    """


@command.command("set", examples=[
    ("Title and tags of the asset of this directory:",
     "ama asset set --title 'ResNet-50' --tag vision --tag resnet"),
    ("Add a tag to another asset:", "ama asset set --asset ml-models/prod --add-tag live"),
])
@asset_option
@click.option("--title", metavar="TEXT", help="A one-line title.")
@click.option("--description", metavar="TEXT", help="What the asset is, for the people "
                                                    "who find it.")
@click.option("--tag", "tags", metavar="TAG", multiple=True,
              help="Set the tags to these (repeat for several); replaces the current tags.")
@click.option("--add-tag", "add_tags", metavar="TAG", multiple=True,
              help="Add a tag, keeping the others (repeatable).")
@click.option("--remove-tag", "remove_tags", metavar="TAG", multiple=True,
              help="Remove a tag, keeping the others (repeatable).")
@click.option("--clear-tags", is_flag=True, help="Remove every tag.")
@remote_option
@json_option
def set_(asset_name: str | None, title: str | None, description: str | None,
         tags: tuple[str, ...], add_tags: tuple[str, ...], remove_tags: tuple[str, ...],
         clear_tags: bool, remote: str | None, as_json: bool) -> None:
    """Set the title, description or tags of the asset: only what is given changes.

    With --json: the asset's record afterwards, as 'ama info --json' shows it under
    "asset".
    """
    from ama.plumbing.errors import BadInput
    from ama.porcelain.meta import set_meta

    if clear_tags and (tags or add_tags):
        raise BadInput("--clear-tags cannot be combined with --tag or --add-tag")
    new_tags = [] if clear_tags else (list(tags) if tags else None)
    where, ref = target(asset_name, remote)
    record = set_meta(where, ref, title=title, description=description, tags=new_tags,
                      add_tags=add_tags, remove_tags=remove_tags)
    if as_json:
        emit_json(record)
        return
    click.echo(f"{record['name']}: title {record['title']!r}, tags "
               f"{', '.join(record['tags']) or '-'}")


@command.command("status", examples=[
    ("Mark the asset of this directory as deprecated:", "ama asset status deprecated"),
    ("Make another asset active again:", "ama asset status active --asset ml-models/2"),
], exit_codes=METADATA_EXIT_CODES)
@click.argument("status", type=click.Choice(["active", "deprecated", "obsolete"]))
@asset_option
@remote_option
@json_option
def status(status: str, asset_name: str | None, remote: str | None, as_json: bool) -> None:
    """Set the status of the asset to STATUS: active, deprecated (a newer asset should be
    preferred) or obsolete (no longer to be used). Writers of the project may do this;
    the change is audited.

    With --json: the asset's record afterwards, as 'ama info --json' shows it under
    "asset".
    """
    from ama.porcelain.meta import set_status

    where, ref = target(asset_name, remote)
    record = set_status(where, ref, status)
    if as_json:
        emit_json(record)
        return
    click.echo(f"{record['name']}: {record['status']}")


@command.command("delete", examples=[
    ("Delete an asset (its versions are hidden, its objects kept):",
     "ama asset delete ml-models/2"),
], exit_codes=METADATA_EXIT_CODES)
@click.argument("name", metavar="[NAME]", required=False, shell_complete=complete_asset)
@remote_option
@json_option
def delete(name: str | None, remote: str | None, as_json: bool) -> None:
    """Delete the asset NAME (CLASS/ORDINAL or CLASS/ALIAS; default: the asset of the
    current directory), softly: it is no longer listed, its versions can no longer be
    listed, cloned or added to, and its aliases stay taken; its objects stay on the
    remote, and 'ama asset restore' brings it back as it was. Admins of the project may
    do this; it is audited. Deleting a deleted asset changes nothing.

    With --json: the asset's record afterwards, its "deleted" the time of deletion.
    """
    from ama.porcelain.meta import delete_asset

    where, ref = target(name, remote)
    record = delete_asset(where, ref)
    if as_json:
        emit_json(record)
        return
    click.echo(f"{record['name']}: deleted (bring it back with "
               f"'ama asset restore {record['name']}')")


@command.command("restore", examples=[
    ("Bring a deleted asset back:", "ama asset restore ml-models/2"),
    ("See which assets of a class are deleted:", "ama list ml-models --deleted"),
], exit_codes=METADATA_EXIT_CODES)
@click.argument("name", metavar="[NAME]", required=False, shell_complete=complete_asset)
@remote_option
@json_option
def restore(name: str | None, remote: str | None, as_json: bool) -> None:
    """Restore the deleted asset NAME (CLASS/ORDINAL or CLASS/ALIAS; default: the asset
    of the current directory): it and its versions are listed and cloneable again, as
    they were. Admins of the project may do this; it is audited. Restoring an asset that
    is not deleted changes nothing.

    With --json: the asset's record afterwards.
    """
    from ama.porcelain.meta import delete_asset

    where, ref = target(name, remote)
    record = delete_asset(where, ref, restore=True)
    if as_json:
        emit_json(record)
        return
    click.echo(f"{record['name']}: restored ({record['status']})")
