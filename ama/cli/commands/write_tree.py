"""ama write-tree: write the index as tree objects."""

from __future__ import annotations

import click

from ama.cli.command import Env, command


@command(
    "write-tree",
    examples=[("Record what is staged as a version:",
               "ama commit-manifest $(ama write-tree) -m 'first'")],
    see_also=["ama-update-index(1)", "ama-read-tree(1)", "ama-commit-manifest(1)"],
)
def command() -> None:
    """Write a tree object for every folder of the index and print the root tree's id.

    The staged blobs must be in the asset store (update-index puts them there). The same
    files under the same paths always give the same id: the asset hash.
    """
    from ama.plumbing.graph import write_tree
    from ama.plumbing.index import Index

    env = Env()
    index = Index.read(env.asset_dir.index_path)
    click.echo(write_tree(env.store.objects, index.entries.values()))
