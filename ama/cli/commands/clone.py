"""ama clone: a new asset directory holding a version of an asset from the remote."""

from __future__ import annotations

from pathlib import Path

import click

from ama.cli.command import command, positional_or_option
from ama.cli.commands._metadata import complete_asset
from ama.cli.commands._porcelain import emit_json, json_option, note, progress, quiet_option


@command(
    "clone",
    examples=[
        ("Clone the latest version into ml-models/1/:", "ama clone ml-models/1"),
        ("Clone one version into a directory of your choice:",
         "ama clone ml-models/1/0.0.0 old-model"),
        ("Clone by alias, metadata only (fetch bytes later with ama download):",
         "ama clone ml-models/prod-resnet --soft"),
        ("Clone a model with the data sets it was trained on:",
         "ama clone ml-models/1 --recursive"),
    ],
    see_also=["ama-download(1)", "ama-versions(1)", "ama-switch(1)"],
    exit_codes={0: "success", 1: "the directory is not empty (nor an unfinished clone of "
                                  "this asset), or a transfer failed",
                2: "a malformed name", 3: "no such asset or version",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("name", shell_complete=complete_asset)
@click.argument("dest_arg", metavar="[DIR]", required=False, type=click.Path(path_type=Path))
@click.option("-d", "--dir", "dest", type=click.Path(path_type=Path),
              help="Where to clone, as DIR (default: CLASS/ORDINAL below the current "
                   "directory).")
@click.option("--soft", is_flag=True, help="Fetch metadata only, no file bytes.")
@click.option("-r", "--recursive", is_flag=True,
              help="Also clone every input of the version, and theirs, each into "
                   "CLASS/ORDINAL below the current directory.")
@quiet_option
@json_option
def command(name: str, dest_arg: Path | None, dest: Path | None, soft: bool,
            recursive: bool, quiet: bool, as_json: bool) -> None:
    """Clone the asset NAME (CLASS/ORDINAL or CLASS/ALIAS, optionally /VERSION; default
    the latest version) from the remote into a new asset directory. Files reach it from
    the asset store by the configured link strategy.

    A clone that was interrupted (killed, or a transfer failed) is resumed by running the
    same clone again into the same directory: it goes on with the version it began.
    """
    from ama.porcelain.clone import clone, clone_inputs

    dest = positional_or_option(dest_arg, dest, "DIR", "--dir", required=False)
    with progress("Cloning", not (quiet or as_json)) as bar:
        asset = clone(name, dest, soft=soft, progress=bar)
        inputs = clone_inputs(asset, soft=soft, progress=bar) if recursive else []
    head = asset.head
    if as_json:
        emit_json({"name": head.name, "version": head.version, "manifest": head.manifest,
                   "path": str(asset.root), "soft": soft,
                   "inputs": [{"name": n, "path": None if a is None else str(a.root),
                               "cloned": a is not None} for n, a in inputs]})
        return
    click.echo(str(asset.root))
    note(f"Cloned {head.name} {head.version}" + (" (metadata only)" if soft else ""), quiet)
    for input_name, cloned in inputs:
        if cloned is None:
            note(f"Input {input_name} is here already", quiet)
        else:
            click.echo(str(cloned.root))
            note(f"Cloned input {input_name}", quiet)
