"""ama commit-manifest: create the manifest object that records a version."""

from __future__ import annotations

import getpass
import json
import socket
import sys
from datetime import datetime, timezone
from typing import TextIO

import click

from ama.cli.command import Env, command
from ama.plumbing.errors import BadInput
from ama.plumbing.jsontext import Metadata


@command(
    "commit-manifest",
    examples=[
        ("Record the staged files as a first version:",
         "ama commit-manifest $(ama write-tree) -m 'first'"),
        ("Record a successor made from a data set, with metadata:",
         "ama commit-manifest $TREE -p $PREV -i $DATA:imagenet/3/0.0.1:training-data "
         "--metadata meta.json -m 'retrained'"),
    ],
    see_also=["ama-write-tree(1)", "ama-update-ref(1)", "ama-rev-list(1)", "ama-format(5)"],
)
@click.argument("tree_name", metavar="TREE")
@click.option("-p", "--parent", "parents", multiple=True, metavar="PARENT",
              help="A parent manifest (repeatable).")
@click.option("-i", "--input", "inputs", multiple=True, metavar="ID:NAME:LABEL",
              help="A lineage input: manifest id, <class>/<ordinal>/<version>, label.")
@click.option("-m", "--message", help="The message.")
@click.option("-F", "--file", "message_file", type=click.File("r"),
              help="Read the message from a file ('-' for stdin).")
@click.option("--metadata", "metadata_file", type=click.File("r"),
              help="A JSON object file with the version's metadata ('-' for stdin).")
def command(tree_name: str, parents: tuple[str, ...], inputs: tuple[str, ...],
            message: str | None, message_file: TextIO | None,
            metadata_file: TextIO | None) -> None:
    """Write a manifest for the tree TREE and print its id.

    The author is $AMA_AUTHOR_NAME <$AMA_AUTHOR_EMAIL> (default: the login name at this
    host) and the time is now, or $AMA_AUTHOR_DATE (ISO 8601) for reproducible manifests.
    """
    from ama.plumbing.graph import read_manifest, read_tree
    from ama.plumbing.objects import Author, Input, InvalidObject, Manifest

    if message is not None and message_file is not None:
        raise click.UsageError("-m and -F cannot be used together")
    if message_file is not None:
        message = message_file.read()
    env = Env()
    odb = env.store.objects
    tree = env.resolve(tree_name)
    read_tree(odb, tree)
    parent_ids = []
    for name in parents:
        oid = env.resolve(name)
        read_manifest(odb, oid)
        parent_ids.append(oid)
    input_list = []
    for spec in inputs:
        oid, _, rest = spec.partition(":")
        name, _, label = rest.partition(":")
        if not (oid and name and _):
            raise BadInput(f"input {spec!r} is not ID:NAME:LABEL",
                           "for example -i 4f2a…:imagenet/3/0.0.1:training-data")
        full = oid if len(oid) == 64 else env.resolve(oid)
        try:
            input_list.append(Input(full, name, label))
        except InvalidObject as e:
            raise BadInput(e.message) from None
    metadata: Metadata = {}
    if metadata_file is not None:
        try:
            metadata = json.load(metadata_file)
        except ValueError as e:
            raise BadInput(f"metadata file {metadata_file.name} is not JSON: {e}") from None
        if not isinstance(metadata, dict):
            raise BadInput(f"metadata file {metadata_file.name} must hold a JSON object")
    env_vars = env.environ
    author = Author(
        env_vars.get("AMA_AUTHOR_NAME") or getpass.getuser(),
        env_vars.get("AMA_AUTHOR_EMAIL") or f"{getpass.getuser()}@{socket.gethostname()}",
    )
    created = author_date(env_vars.get("AMA_AUTHOR_DATE"))
    try:
        manifest = Manifest.create(tree, author, created, message or "", parent_ids,
                                   input_list, metadata)
    except InvalidObject as e:
        raise BadInput(e.message) from None
    click.echo(odb.write(manifest.serialize()))
    sys.stdout.flush()


def author_date(text: str | None) -> datetime:
    """The time ``$AMA_AUTHOR_DATE`` (``text``) names, now when it is unset; raises BadInput
    when it is not ISO 8601."""
    if not text:
        return datetime.now(timezone.utc)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(f"AMA_AUTHOR_DATE={text!r} is not an ISO 8601 time",
                       "for example 2026-11-27T16:00:00Z") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


