"""ama rev-parse: turn ids, prefixes and ref names into full object ids."""

from __future__ import annotations

import click

from ama.cli.command import Env, command, write_records


@command(
    "rev-parse",
    examples=[
        ("Expand a short id:", "ama rev-parse 4f2a"),
        ("The tree of the version in this asset directory:", "ama rev-parse 'HEAD^{tree}'"),
        ("The version before the previous one:", "ama rev-parse HEAD~2"),
    ],
    see_also=["ama-show-ref(1)", "ama-rev-list(1)"],
)
@click.argument("names", nargs=-1, required=True)
def command(names: tuple[str, ...]) -> None:
    """Print the full id that each NAME stands for, one per line.

    A NAME is a full id, a unique prefix of 4+ hex characters, HEAD or a ref under refs/,
    followed by any of ^{tree} (a manifest's tree), ^ or ^N (its first or Nth parent) and
    ~N (the first parent N times). Nothing is printed if any NAME fails.
    """
    env = Env()
    write_records([env.resolve(name) for name in names])
