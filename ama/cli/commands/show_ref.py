"""ama show-ref: list refs and the ids they hold."""

from __future__ import annotations

import sys

import click

from ama.cli.command import Env, command, write_records


@command(
    "show-ref",
    examples=[("List every ref:", "ama show-ref"),
              ("Show refs whose last components are 'main':", "ama show-ref main")],
    see_also=["ama-update-ref(1)", "ama-rev-parse(1)"],
    exit_codes={0: "at least one ref was listed", 1: "no ref matched", 2: "bad usage"},
)
@click.option("--head", is_flag=True, help="Also show HEAD of the asset directory.")
@click.argument("patterns", nargs=-1)
def command(head: bool, patterns: tuple[str, ...]) -> None:
    """Print '<id> <name>' for each ref in the asset store, sorted by name.

    A PATTERN matches a ref whose name ends with it as whole components (so 'main' matches
    refs/heads/main). Symbolic refs are shown with the id they resolve to.
    """
    from ama.plumbing.errors import NotFound
    from ama.plumbing.revision import resolve_ref

    env = Env()
    rows = []
    names = [name for name, _value in env.store.refs.iter()]
    if head:
        names.insert(0, "HEAD")
    for name in names:
        if patterns and not any(name == p or name.endswith("/" + p) for p in patterns):
            continue
        try:
            rows.append(f"{resolve_ref(env.store.refs, env.head_refs, name)} {name}")
        except NotFound:
            continue
    write_records(rows)
    if not rows:
        sys.exit(1)
