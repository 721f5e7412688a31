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
    exit_codes={0: "every object is intact (temp files left by interrupted writes may be "
                   "listed as garbage)", 1: "problems were found (listed on stdout)",
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
    breaks its format) and 'badsize' (with --full, a tree entry whose size is wrong).

    Temp files left by an interrupted write (a killed ama add, say) are listed as
    'garbage' with an empty id field, followed by a note on stderr. They are not damage
    (no object is affected) and do not change the exit status: 'ama store gc' removes
    those older than its grace period (an hour by default).
    """
    from ama.plumbing.fsck import check

    env = Env()
    problems = list(check(env.store, full=full, progress=_progress if sys.stderr.isatty()
                          else None))
    write_records(f"{p.kind}\t{p.id}\t{p.detail}" for p in problems)
    garbage = sum(p.kind == "garbage" for p in problems)
    if garbage:
        click.echo(f"ama fsck: note: {garbage} temp file(s) left by interrupted writes; "
                   "'ama store gc' removes those older than an hour", err=True)
    if len(problems) > garbage:
        click.echo(f"ama fsck: {len(problems) - garbage} problem(s) found", err=True)
        sys.exit(1)


def _progress(done: int, total: int) -> None:
    end = "\n" if done == total else "\r"
    sys.stderr.write(f"Checking objects: {done}/{total}{end}")
