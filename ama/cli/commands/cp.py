"""ama cp: copy files between asset versions and local paths, by object id."""

from __future__ import annotations

import os

import click

from ama.cli.command import command
from ama.cli.commands._metadata import METADATA_EXIT_CODES, remote_option
from ama.cli.commands._porcelain import emit_json, json_option, note, quiet_option


@command(
    "cp",
    examples=[
        ("Copy one file of a version to a local file:",
         "ama cp ml-models/1/0.0.2:data/train.csv ./train.csv"),
        ("Copy a folder of the latest version into a local folder:",
         "ama cp ml-models/prod:data $WORK/copied/"),
        ("Copy a local file into another asset's data/ folder (its next version):",
         "ama cp ./config.yaml ml-models/2:data/"),
        ("Copy between two assets of one remote: no file bytes are sent:",
         "ama cp ml-models/1/0.0.0:weights ml-models/2: -m 'baseline weights'"),
    ],
    see_also=["ama-union(1)", "ama-clone(1)", "ama-download(1)", "ama-upload(1)"],
    exit_codes={**METADATA_EXIT_CODES,
                1: "the destination asset moved on meanwhile, or the remote refused the "
                   "version (a class rule)"},
)
@click.argument("src", metavar="SRC")
@click.argument("dest", metavar="DEST")
@click.option("-m", "--message", metavar="TEXT",
              help="The message of the version a copy into an asset makes (default: the "
                   "command line).")
@remote_option
@quiet_option
@json_option
def command(src: str, dest: str, message: str | None, remote: str | None, quiet: bool,
            as_json: bool) -> None:
    """Copy SRC to DEST, where either names files of an asset and the other a local path
    or another asset, by object id.

    An asset address is CLASS/ASSET[/VERSION]:PATH: ASSET is an ordinal or an alias,
    VERSION defaults to the latest, PATH is a file or folder from the asset's root (an
    empty PATH, as in 'ml-models/2:', is the root, as a destination). Anything else is a
    local path; write a local name that holds a colon as ./NAME.

    From an asset version to a local path, the objects the asset store lacks are fetched,
    checked against their ids and written (an existing file is replaced).

    Into an asset (CLASS/ASSET:PATH, without a version: versions never change), ama cp
    commits the asset's next version on the remote, made from its latest version with the
    copied files in place (replacing what was at their paths); its inputs and metadata
    carry over, and a copy from another asset's version adds that version as an input
    labelled "copied from". Files travel by id: only objects the remote lacks are sent, so
    a copy between two assets of one remote sends no file bytes, only the new trees and
    manifest. Directories holding the asset get the version with 'ama pull'.

    As with cp(1), a DEST ending with / (or an existing local folder, or an empty asset
    PATH) receives SRC under its own name; any other DEST is SRC's new name. Both assets
    are on one remote and project: the default remote (or --remote) and its active
    project.

    With --json: {"files", "version", "received", "sent", "bytes_sent"}: the paths
    written (local, or in the asset), the version made (or null), the objects fetched and
    the objects and bytes sent.
    """
    from ama.cli.commands.commit_manifest import author_date
    from ama.plumbing.store import Store
    from ama.porcelain.config import Config
    from ama.porcelain.cp import copy
    from ama.porcelain.info import connect

    config = Config.open()
    where = connect(config, remote)
    result = copy(where, Store.open().objects, src, dest, message=message,
                  author=config.author(), now=author_date(os.environ.get("AMA_AUTHOR_DATE")),
                  parallelism=int(config.get("transfer.parallelism")))
    if as_json:
        emit_json(result.to_json())
        return
    if result.version is not None:
        click.echo(f"{result.version['name']}/{result.version['version']}")
        note(f"{len(result.files)} file(s) copied; sent {result.sent} object(s) "
             f"({result.bytes_sent} bytes)", quiet)
    else:
        note(f"{len(result.files)} file(s) copied; {result.received} object(s) fetched",
             quiet)
