"""ama count-objects: count the objects in the asset store and their size."""

from __future__ import annotations

import click

from ama.cli.command import Env, command


@command(
    "count-objects",
    examples=[("How much the asset store holds:", "ama count-objects -v")],
    see_also=["ama-fsck(1)"],
)
@click.option("-v", "--verbose", is_flag=True,
              help="Print 'count', 'size' (KiB), 'garbage' and 'size-garbage' lines.")
def command(verbose: bool) -> None:
    """Print how many objects the asset store holds and how much disk they take, as
    'N objects, K kilobytes' (KiB, rounded up per file's bytes)."""
    import os

    env = Env()
    odb = env.store.objects
    count = size = 0
    for oid in odb:
        count += 1
        size += os.lstat(odb.path(oid)).st_size
    garbage = odb.temp_files()
    garbage_size = sum(p.stat().st_size for p in garbage)
    kib = (size + 1023) // 1024
    if verbose:
        click.echo(f"count: {count}\nsize: {kib}\ngarbage: {len(garbage)}\n"
                   f"size-garbage: {(garbage_size + 1023) // 1024}")
    else:
        click.echo(f"{count} objects, {kib} kilobytes")
