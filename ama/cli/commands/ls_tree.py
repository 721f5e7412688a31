"""ama ls-tree: list the entries of a tree."""

from __future__ import annotations

import click

from ama.cli.command import Env, command, write_records


@command(
    "ls-tree",
    examples=[
        ("List the top folder of the version in this asset directory:", "ama ls-tree HEAD"),
        ("List every file, NUL-terminated, for xargs -0:", "ama ls-tree -r -z --name-only HEAD"),
    ],
    see_also=["ama-mktree(1)", "ama-ls-files(1)", "ama-cat-object(1)"],
)
@click.option("-r", "recursive", is_flag=True, help="Recurse into subtrees; list files only.")
@click.option("-z", "nul", is_flag=True, help="End records with NUL instead of newline.")
@click.option("--name-only", is_flag=True, help="Print only the paths.")
@click.argument("object_name", metavar="ID")
def command(recursive: bool, nul: bool, name_only: bool, object_name: str) -> None:
    """List the tree ID (or the tree of the manifest ID) as
    '<type> <id> <size><TAB><path>' lines, sorted by path.

    Without -r subtrees are listed as entries of type 'tree' and not entered.
    """
    from ama.plumbing.graph import tree_of, walk_tree

    env = Env()
    odb = env.store.objects
    tree = tree_of(odb, env.resolve(object_name))
    rows = walk_tree(odb, tree, recursive)
    if name_only:
        write_records((path for path, _e in rows), nul)
    else:
        write_records((f"{e.type} {e.id} {e.size}\t{path}" for path, e in rows), nul)
