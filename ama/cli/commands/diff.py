"""ama diff: which files differ between versions, or between a version and the work tree."""

from __future__ import annotations

import sys

import click

from ama.cli.command import command
from ama.cli.commands._metadata import complete_version
from ama.cli.commands._porcelain import emit_json, json_array_option, open_asset


@command(
    "diff",
    examples=[
        ("What changed since the last upload (staged or not):", "ama diff"),
        ("What changed between two versions, as A/M/D lines:",
         "ama diff 0.0.0 0.0.1 --name-status"),
        ("How a text file changed between two versions, line by line:",
         "ama diff --file config.yaml 0.0.0 0.0.1"),
        ("The same, side by side in a page for the browser:",
         "ama diff --file config.yaml 0.0.0 0.0.1 --html > config.html"),
    ],
    see_also=["ama-status(1)", "ama-rev-parse(1)"],
    exit_codes={0: "success", 2: "bad usage or a malformed version",
                3: "a version or object not known on this machine"},
)
@click.argument("versions", nargs=-1, metavar="[VERSION [VERSION]]",
                shell_complete=complete_version)
@click.option("--name-status", is_flag=True,
              help="Print only '<A|M|D><TAB><path>' per file.")
@click.option("--file", "file_", metavar="PATH",
              help="Show how the text of the file PATH changed, as a unified diff.")
@click.option("--html", is_flag=True,
              help="With --file: print a self-contained HTML page, the sides next to each other.")
@json_array_option
def command(versions: tuple[str, ...], name_status: bool, file_: str | None, html: bool,
            as_json: bool) -> None:
    """Show the files that were added (A), modified (M) or deleted (D).

    With no VERSION: from the directory's version (HEAD) to the work tree's staged files
    with their current content; with one: from VERSION to the work tree; with two: from
    the first to the second. A VERSION is HEAD, a version number of this asset known on
    this machine (0.0.1), or a manifest or tree id (see ama-rev-parse(1)). Untracked files
    are not compared. Without --name-status each line also gives the old and new sizes.

    With --file PATH: the lines of that text file (UTF-8) that changed between the same
    two sides, as a unified diff (or with --html, a page for the browser); bytes not in the
    asset store are fetched from the remote first.
    """
    from ama.porcelain.diff import diff

    if len(versions) > 2:
        raise click.UsageError("name at most two versions")
    if html and file_ is None:
        raise click.UsageError("--html shows one file's text: name it with --file PATH")
    if file_ is not None:
        if name_status or as_json:
            raise click.UsageError("--file shows text; it does not go with --name-status "
                                   "or --json")
        from ama.porcelain.diff import file_diff

        shown = file_diff(open_asset(), file_, list(versions))
        sys.stdout.write(shown.html() if html else shown.unified())
        return
    changes = diff(open_asset(), list(versions))
    if as_json:
        emit_json([c.to_json() for c in changes])
        return
    lines = []
    for c in changes:
        if name_status:
            lines.append(f"{c.status}\t{c.path}")
        else:
            old = "-" if c.old is None else str(c.old[1])
            new = "-" if c.new is None else str(c.new[1])
            lines.append(f"{c.status}\t{c.path}\t{old} -> {new} bytes")
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
