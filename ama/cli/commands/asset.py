"""ama asset: set an asset's title, description and tags."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._metadata import (
    METADATA_EXIT_CODES,
    asset_option,
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
    ],
    see_also=["ama-info(1)", "ama-list(1)", "ama-alias(1)"],
    exit_codes=METADATA_EXIT_CODES,
)
def command() -> None:
    """Change what describes an asset as a whole: its title, description and tags. They
    are kept by the remote, can change at any time, and every change is audited; a
    version's own metadata (ama upload --metadata) never changes. See them with
    'ama info'.
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
