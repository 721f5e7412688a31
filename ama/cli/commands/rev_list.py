"""ama rev-list: list manifests, and their objects, reachable from others."""

from __future__ import annotations

import click

from ama.cli.command import Env, command, write_records


@command(
    "rev-list",
    examples=[
        ("The history of the version in this asset directory:", "ama rev-list HEAD"),
        ("Every object a new version adds to its parent:",
         "ama rev-list --objects $NEW ^$OLD"),
    ],
    see_also=["ama-rev-parse(1)", "ama-ls-tree(1)", "ama-fsck(1)"],
)
@click.option("--objects", is_flag=True,
              help="Also list trees and blobs, as '<id><TAB><path>'.")
@click.option("-z", "nul", is_flag=True, help="End records with NUL instead of newline.")
@click.argument("names", nargs=-1, required=True, metavar="ID… [^ID…]")
def command(objects: bool, nul: bool, names: tuple[str, ...]) -> None:
    """List the manifests reachable from each ID through parents, newest first, leaving out
    those reachable from any ^ID.

    With --objects the trees and blobs of those manifests follow, each with the path where
    it first appears (the root tree's path is empty).
    """
    from ama.plumbing.graph import reachable

    env = Env()
    include = [env.resolve(n) for n in names if not n.startswith("^")]
    exclude = [env.resolve(n[1:]) for n in names if n.startswith("^")]
    rows = reachable(env.store.objects, include, exclude, objects)
    write_records((oid if path is None else f"{oid}\t{path}" for oid, path in rows), nul)
