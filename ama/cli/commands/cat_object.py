"""ama cat-object: show an object's type, size, content, or whether it exists."""

from __future__ import annotations

import json
import shutil
import sys

import click

from ama.cli.command import Env, command
from ama.plumbing.errors import NotFound
from ama.plumbing.odb import CorruptObject


@command(
    "cat-object",
    examples=[
        ("Show what kind of object an id names:", "ama cat-object -t 4f2a"),
        ("Print a manifest:", "ama cat-object -p HEAD"),
        ("Check that an object exists and is intact:", "ama cat-object -e $ID && echo present"),
    ],
    see_also=["ama-hash-object(1)", "ama-ls-tree(1)", "ama-fsck(1)", "ama-format(5)"],
    exit_codes={0: "success (with -e: the object exists and is intact)",
                1: "a corrupt object (with -e: missing or corrupt, nothing printed)",
                2: "bad usage or a malformed id", 3: "no such object"},
)
@click.option("-t", "mode", flag_value="type", help="Print the type: blob, tree or manifest.")
@click.option("-s", "mode", flag_value="size", help="Print the size in bytes.")
@click.option("-p", "mode", flag_value="print",
              help="Print the content: a blob's bytes, a tree's entries, a manifest as JSON.")
@click.option("-e", "mode", flag_value="exists",
              help="Print nothing; exit 0 if the object exists and is intact, else 1.")
@click.argument("object_name", metavar="ID")
def command(mode: str | None, object_name: str) -> None:
    """Show the object ID (an id, a unique prefix of 4+ hex characters, or a ref).

    Every object is re-hashed before anything is printed: an object whose bytes do not match
    its id is refused with an error naming it and where it was found.
    """
    if mode is None:
        raise click.UsageError("give one of -t, -s, -p or -e")
    env = Env()
    odb = env.store.objects
    if mode == "exists":
        try:
            odb.verify(env.resolve(object_name))
        except (NotFound, CorruptObject):
            sys.exit(1)
        return
    oid = env.resolve(object_name)
    path = odb.verify(oid)
    with open(path, "rb") as f:
        head = f.read(64)
    kind = "blob"
    data = b""
    if head.startswith(b"ama-tree 1\n") or head.startswith(b'{"author":'):
        from ama.plumbing.objects import object_type

        data = odb.get(oid)
        kind = object_type(data)
    if mode == "type":
        click.echo(kind)
    elif mode == "size":
        click.echo(path.stat().st_size)
    elif kind == "blob":
        with open(path, "rb") as f:
            shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
        sys.stdout.buffer.flush()
    elif kind == "tree":
        sys.stdout.buffer.write(data.split(b"\n", 1)[1])
        sys.stdout.buffer.flush()
    else:
        click.echo(json.dumps(json.loads(data), indent=2, sort_keys=True, ensure_ascii=False))
