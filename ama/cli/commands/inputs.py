"""ama inputs: the lineage of the next upload (the versions it was made from), and the
versions made from the one this directory holds."""

from __future__ import annotations

import click

from ama.cli.command import group
from ama.cli.commands._metadata import METADATA_EXIT_CODES, complete_asset
from ama.cli.commands._porcelain import emit_json, json_option, open_asset


@group(
    "inputs",
    examples=[
        ("Record that the next version was trained on a data set:",
         "ama inputs add imagenet-subsets/3/0.0.1 --label training-data"),
        ("The same by alias (recorded by ordinal):",
         "ama inputs add imagenet-subsets/tiny/0.0.1 --label validation-data"),
        ("See the inputs and the versions made from this one:", "ama inputs list"),
        ("Drop an input before uploading:", "ama inputs remove imagenet-subsets/3/0.0.1"),
    ],
    see_also=["ama-upload(1)", "ama-info(1)"],
    exit_codes=METADATA_EXIT_CODES,
)
def command() -> None:
    """Stage the inputs of the next upload: the versions of other assets this one was
    made from, each with a label saying how it was used. Inputs are kept in .ama/inputs
    and recorded in the manifest of the next version by 'ama upload'. Like staged files,
    they carry over: until you change them, the next upload records the inputs of the
    version this directory holds.
    """


@command.command("add", examples=[("Add a training set:",
                                   "ama inputs add imagenet-subsets/3/0.0.1 "
                                   "--label training-data")])
@click.argument("name", metavar="NAME/VERSION", shell_complete=complete_asset)
@click.option("--label", required=True, metavar="TEXT",
              help="How the input was used, e.g. training-data.")
@json_option
def add(name: str, label: str, as_json: bool) -> None:
    """Stage NAME/VERSION (CLASS/ORDINAL/VERSION or CLASS/ALIAS/VERSION; CLASS/ASSET alone
    means its latest version) as an input of the next upload. The version is looked up on
    the asset's remote; adding a staged input again changes its label."""
    from ama.porcelain import inputs
    from ama.porcelain.info import connect_asset

    asset = open_asset()
    inputs.check_label(label)
    change = inputs.add(asset, connect_asset(asset), name, label)
    if as_json:
        emit_json(change.to_json())
    else:
        click.echo(f"{change.action} input {change.input.name} ({change.input.label})")


@command.command("remove", examples=[("Drop an input:",
                                      "ama inputs remove imagenet-subsets/3/0.0.1")])
@click.argument("name", metavar="NAME/VERSION", shell_complete=complete_asset)
@json_option
def remove(name: str, as_json: bool) -> None:
    """Unstage the input NAME/VERSION (as 'ama inputs list' shows it; an alias is looked
    up on the remote)."""
    from ama.porcelain import inputs
    from ama.porcelain.info import connect_asset, parse_name

    asset = open_asset()
    ref = parse_name(name, version=True)
    change = inputs.remove(asset, name, connect_asset(asset) if ref.is_alias else None)
    if as_json:
        emit_json(change.to_json())
    else:
        click.echo(f"removed input {change.input.name}")


@command.command("list", examples=[("Show the lineage around this directory's version:",
                                    "ama inputs list")])
@click.option("--local", is_flag=True,
              help="Do not ask the remote for dependents (works offline).")
@json_option
def list_(local: bool, as_json: bool) -> None:
    """List the inputs of the next upload (marking those added or removed since the
    version held), and the versions on the remote that name the version held as an input.

    With --json: {"staged", "recorded", "added", "removed": [{"name", "manifest",
    "label"}], "dependents": [{"name", "version", "manifest", "label"}]}.
    """
    from ama.porcelain import inputs
    from ama.porcelain.info import connect_asset

    asset = open_asset()
    remote = None if local or asset.head.manifest is None else connect_asset(asset)
    shown = inputs.listing(asset, remote)
    if as_json:
        emit_json(shown.to_json())
        return
    added = {i.name for i in shown.added}
    out = []
    if shown.staged or shown.removed:
        out.append("Inputs of the next upload:")
        for i in shown.staged:
            mark = "+" if i.name in added else " "
            out.append(f"{mark} {i.name}\t{i.label}")
        for i in shown.removed:
            out.append(f"- {i.name}\t{i.label}\t(removed)")
    else:
        out.append("No inputs (add one: ama inputs add NAME/VERSION --label TEXT)")
    if shown.dependents:
        out.append(f"Made from {asset.head.name}/{asset.head.version}:")
        for d in shown.dependents:
            out.append(f"  {d['name']}/{d['version']}\t{d.get('label') or ''}")
    click.echo("\n".join(out))
