"""ama upload: make the staged files the asset's next version on its remote."""

from __future__ import annotations

import os

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
    "upload",
    examples=[
        ("Upload the staged files as the next version:", "ama upload -m 'first model'"),
        ("Record metadata the class schema checks, and bump the minor number:",
         "ama upload -m 'retrained' --metadata meta.json --bump minor"),
        ("Run it again after an interruption: it sends only what is missing:",
         "ama upload -m 'first model'"),
    ],
    see_also=["ama-status(1)", "ama-versions(1)", "ama-fetch(1)", "ama-switch(1)"],
    exit_codes={0: "success (also when nothing changed: no version is made)",
                1: "the class rules are broken, or someone uploaded a newer version first",
                2: "bad usage or a bad metadata file", 3: "not an asset directory, an unknown "
                "class or a missing file", 4: "not logged in or not allowed",
                5: "the remote cannot be reached"},
)
@click.option("-m", "--message", required=True, help="What this version changes.")
@click.option("--metadata", "metadata_file", metavar="FILE",
              help="A JSON object recorded as the version's metadata (checked against the "
                   "class schema).")
@click.option("--bump", type=click.Choice(["patch", "minor", "major"]), default="patch",
              show_default=True, help="Which part of the version number goes up.")
@quiet_option
@json_option
def command(message: str, metadata_file: str | None, bump: str, quiet: bool,
            as_json: bool) -> None:
    """Upload the staged files as the next version of this asset.

    The files are checked against the class rules here first; then the remote is asked
    which objects it lacks, only those are sent (in parallel, transfer.parallelism at a
    time) and the version is committed. The first upload gives the asset its ordinal
    (ml-models/1) and version 0.0.0; each later one bumps the patch number. An upload
    with nothing changed makes no version and says so. An interrupted upload resumes
    where it stopped when run again; objects of transfer.multipart_threshold bytes or
    more go in parts, and one interrupted goes on from the parts already stored. A
    server reads back and hashes what went straight to its storage before the version
    may commit: for gigabytes, a wait the progress bar names (remote verifying).
    """
    from ama.cli.commands.commit_manifest import author_date
    from ama.porcelain.upload import upload

    asset = open_asset()
    # $AMA_AUTHOR_DATE fixes the manifest's time, as for commit-manifest: reproducible ids.
    created = author_date(os.environ.get("AMA_AUTHOR_DATE"))
    with progress("Uploading", not (quiet or as_json)) as bar:
        result = upload(asset, message, metadata=metadata_file, bump=bump, progress=bar,
                        now=lambda: created, notice=lambda text: note(text, quiet))
    if as_json:
        emit_json(result.to_json())
        return
    if not result.created:
        click.echo(f"Nothing to upload: the staged files are {result.name} {result.version}; "
                   "no version was made")
        return
    click.echo(result.name)
    click.echo(f"version {result.version}")
    note(f"sent {result.objects_sent} of {result.objects_total} objects "
         f"({result.bytes_sent} bytes)", quiet)
