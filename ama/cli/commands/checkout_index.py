"""ama checkout-index: write staged files from the asset store into the work tree."""

from __future__ import annotations

import click

from ama.cli.command import Env, command


@command(
    "checkout-index",
    examples=[
        ("Write every staged file:", "ama checkout-index -a"),
        ("Restore one file as a hard link to the store:",
         "ama checkout-index --link hardlink -f data/train.csv"),
    ],
    see_also=["ama-read-tree(1)", "ama-update-index(1)", "ama-format(5)"],
)
@click.option("-a", "--all", "everything", is_flag=True, help="Write every staged file.")
@click.option("-f", "--force", is_flag=True, help="Overwrite files that hold other content.")
@click.option("--link", "strategy", default="auto", show_default=True,
              type=click.Choice(["auto", "reflink", "hardlink", "symlink", "copy"]),
              help="How files get their bytes from the store: auto tries reflink, then copy.")
@click.argument("paths", nargs=-1)
def command(everything: bool, force: bool, strategy: str, paths: tuple[str, ...]) -> None:
    """Write the staged PATHs (or all with -a) from the asset store into the work tree.

    Files already holding the staged bytes are left alone; files holding other bytes are
    refused unless -f. Every file appears atomically and its object is re-hashed on the way,
    so a corrupt object never reaches the work tree. hardlink and symlink give read-only
    files; an executable file is always copied.
    """
    from ama.plumbing.checkout import checkout_index

    if everything == bool(paths):
        raise click.UsageError("give either -a or the paths to write")
    env = Env()
    asset_dir = env.asset_dir
    checkout_index(env.store.objects, asset_dir.index_path, asset_dir.root,
                   None if everything else [asset_dir.relpath(name) for name in paths],
                   strategy, force)
