"""ama download: the file bytes of the version an asset directory holds."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._porcelain import (
    emit_json,
    json_option,
    note,
    open_asset,
    progress,
    quiet_option,
)


@command(
    "download",
    examples=[
        ("Bring every file of a soft clone:", "ama download"),
        ("Only one folder and the ONNX files:", "ama download weights/ '*.onnx'"),
    ],
    see_also=["ama-clone(1)", "ama-fetch(1)"],
    exit_codes={0: "success", 1: "a file here holds other bytes, or a transfer failed",
                3: "a path matching no file, or not an asset directory",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("patterns", nargs=-1, metavar="[PATH|GLOB]…")
@click.option("-f", "--force", is_flag=True,
              help="Overwrite files that hold other bytes, and fetch again each store "
                   "object found corrupt.")
@quiet_option
@json_option
def command(patterns: tuple[str, ...], force: bool, quiet: bool, as_json: bool) -> None:
    """Fetch the bytes of the files of the current version (all of them, or those below
    each PATH or matching each GLOB, from the asset root) and place the missing ones.
    Each object is re-hashed before it enters the store; a download that was
    interrupted fetches only the rest when run again."""
    from ama.porcelain.download import download

    asset = open_asset()
    with progress("Downloading", not (quiet or as_json)) as bar:
        result = download(asset, patterns, progress=bar, force=force)
    if as_json:
        emit_json(result.to_json())
        return
    note(f"received {result.received} objects, placed {len(result.placed)} files "
         f"({result.bytes} bytes)" + (f", repaired {len(result.repaired)} corrupt objects"
                                      if result.repaired else ""), quiet)
