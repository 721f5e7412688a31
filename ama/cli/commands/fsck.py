"""ama fsck: verify every object in the asset store."""

from __future__ import annotations

import sys

import click

from ama.cli.command import Env, command, write_records


@command(
    "fsck",
    examples=[("Check that every stored object is intact:", "ama fsck"),
              ("Also check that every tree and manifest is complete:", "ama fsck --full")],
    see_also=["ama-cat-object(1)", "ama-count-objects(1)", "ama-format(5)"],
    exit_codes={0: "every object is intact", 1: "problems were found (listed on stdout)",
                2: "bad usage"},
)
@click.option("--full", is_flag=True,
              help="Also parse every tree and manifest and check what they name is present.")
def command(full: bool) -> None:
    """Re-hash every object of the asset store and report each problem on stdout as
    '<problem><TAB><id><TAB><detail>'.

    Problems: 'corrupt' (the bytes do not hash to the id: a flipped bit, a truncated file,
    an object under the wrong name), 'missing' (a ref, or with --full a tree or manifest,
    names an object that is not stored), 'invalid' (with --full, a tree or manifest that
    breaks its format), 'badsize' (with --full, a tree entry whose size is wrong) and
    'garbage' (a temp file left by an interrupted write; the id field is empty).
    """
    from ama.plumbing.fsck import check

    env = Env()
    problems = list(check(env.store, full=full, progress=_progress if sys.stderr.isatty()
                          else None))
    write_records(f"{p.kind}\t{p.id}\t{p.detail}" for p in problems)
    if problems:
        click.echo(f"ama fsck: {len(problems)} problem(s) found", err=True)
        sys.exit(1)


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else "\r"
    sys.stderr.write(f"Checking objects: {done}/{total}{end}")
