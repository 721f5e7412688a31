"""ama read-tree: replace the index with the contents of a tree."""

from __future__ import annotations

import click

from ama.cli.command import Env, command


@command(
    "read-tree",
    examples=[("Stage a version's files and write them out:",
               "ama read-tree $ID && ama checkout-index -a")],
    see_also=["ama-write-tree(1)", "ama-checkout-index(1)", "ama-ls-files(1)"],
)
@click.argument("object_name", metavar="ID")
def command(object_name: str) -> None:
    """Replace the index with the files of the tree ID (or of the manifest ID's tree).

    The work tree is not touched: run checkout-index -a to write the files. The new entries
    carry no stat, so the next check re-hashes each file once.
    """
    from ama.plumbing.graph import tree_of, walk_tree
    from ama.plumbing.index import Index, IndexEntry, mode_of
    from ama.plumbing.objects import check_paths

    env = Env()
    odb = env.store.objects
    tree = tree_of(odb, env.resolve(object_name))
    index = Index.read(env.asset_dir.index_path)
    entries = {
        path: IndexEntry(path, e.id, e.size, 0, 0, mode_of(e.type))
        for path, e in walk_tree(odb, tree)
    }
    check_paths(entries, f"tree {tree}")
    index.clear()
    index.entries.update(entries)
    index.tree = tree
    index.write()
