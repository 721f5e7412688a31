"""ama clone: a new asset directory holding a version of an asset from the remote."""

from __future__ import annotations

from pathlib import Path

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import emit_json, json_option, note, progress, quiet_option


@command(
    "clone",
    examples=[
        ("Clone the latest version into ml-models/1/:", "ama clone ml-models/1"),
        ("Clone one version into a directory of your choice:",
         "ama clone ml-models/1/0.0.0 -d old-model"),
        ("Clone by alias, metadata only (fetch bytes later with ama download):",
         "ama clone ml-models/prod-resnet --soft"),
    ],
    see_also=["ama-download(1)", "ama-versions(1)", "ama-switch(1)"],
    exit_codes={0: "success", 1: "the directory is not empty (nor an unfinished clone of "
                                  "this asset), or a transfer failed",
                2: "a malformed name", 3: "no such asset or version",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("name")
@click.option("-d", "--dir", "dest", type=click.Path(path_type=Path),
              help="Where to clone (default: CLASS/ORDINAL below the current directory).")
@click.option("--soft", is_flag=True, help="Fetch metadata only, no file bytes.")
@quiet_option
@json_option
def command(name: str, dest: Path | None, soft: bool, quiet: bool, as_json: bool) -> None:
    """Clone the asset NAME (CLASS/ORDINAL or CLASS/ALIAS, optionally /VERSION; default
    the latest version) from the remote into a new asset directory. Files reach it from
    the asset store by the configured link strategy.

    A clone that was interrupted (killed, or a transfer failed) is resumed by running the
    same clone again into the same directory: it goes on with the version it began.
    """
    from ama.porcelain.clone import clone

    with progress("Cloning", not (quiet or as_json)) as bar:
        asset = clone(name, dest, soft=soft, progress=bar)
    head = asset.head
    if as_json:
        emit_json({"name": head.name, "version": head.version, "manifest": head.manifest,
                   "path": str(asset.root), "soft": soft})
        return
    click.echo(str(asset.root))
    note(f"Cloned {head.name} {head.version}" + (" (metadata only)" if soft else ""), quiet)
