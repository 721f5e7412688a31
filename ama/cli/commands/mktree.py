"""ama mktree: build a tree object from ls-tree lines."""

from __future__ import annotations

import sys

import click

from ama.cli.command import Env, command, read_records
from ama.plumbing.errors import BadInput, NotFound


@command(
    "mktree",
    examples=[
        ("Copy a tree, dropping one entry:",
         "ama ls-tree $TREE | grep -v 'scratch.txt$' | ama mktree"),
    ],
    see_also=["ama-ls-tree(1)", "ama-write-tree(1)", "ama-format(5)"],
)
@click.option("-z", "nul", is_flag=True, help="Input records end with NUL, not newline.")
def command(nul: bool) -> None:
    """Read '<type> <id> <size><TAB><name>' lines on stdin, write the tree, print its id.

    The lines may come in any order; they are sorted. Every rule of a tree is checked before
    anything is written: valid names, no duplicates, known types, and every named object
    present in the asset store with the stated size.
    """
    from ama.plumbing.graph import read_tree
    from ama.plumbing.objects import InvalidObject, Tree, parse_entry_line

    env = Env()
    odb = env.store.objects
    entries = []
    for number, record in enumerate(read_records(sys.stdin, nul), start=1):
        try:
            entries.append(parse_entry_line(record.encode("utf-8", "surrogateescape"), number))
        except InvalidObject as e:
            raise BadInput(e.message.replace("tree line", "input line")) from None
    try:
        tree = Tree.of(entries)
    except InvalidObject as e:
        raise BadInput(e.message) from None
    for entry in tree.entries:
        if not odb.has(entry.id):
            raise NotFound(f"{entry.name}: object {entry.id} is not in the asset store")
        actual = read_tree(odb, entry.id).size if entry.type == "tree" else odb.size(entry.id)
        if actual != entry.size:
            raise BadInput(f"{entry.name}: size {entry.size} is wrong, object {entry.id} "
                           f"has {actual} bytes")
    click.echo(odb.write(tree.serialize()))
