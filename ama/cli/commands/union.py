"""ama union: stage another version's files beside the asset directory's own."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._metadata import complete_asset
from ama.cli.commands._porcelain import emit_json, json_option, note, open_asset, quiet_option


@command(
    "union",
    examples=[
        ("Join the first version of this asset, taking its file wherever the two differ:",
         "ama union 0.0.0 --theirs"),
        ("Join another asset's latest version, keeping this directory's files where both "
         "hold a path:", "ama union ml-models/2 --ours"),
        ("List what conflicts with another asset's version (exits 1 when something does, "
         "changing nothing):", "ama union ml-models/2/0.0.0"),
    ],
    see_also=["ama-upload(1)", "ama-status(1)", "ama-cp(1)", "ama-update(1)"],
    exit_codes={0: "success", 1: "paths conflict and no side was chosen, or files here "
                                 "would be overwritten; nothing was changed",
                2: "a malformed name, or a version of another class",
                3: "no such asset or version, or not an asset directory",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@click.argument("other", metavar="OTHER", shell_complete=complete_asset)
@click.option("--ours", "side", flag_value="ours",
              help="Where both sides hold a path differently, keep this directory's file.")
@click.option("--theirs", "side", flag_value="theirs",
              help="Where both sides hold a path differently, take OTHER's file.")
@quiet_option
@json_option
def command(other: str, side: str | None, quiet: bool, as_json: bool) -> None:
    """Stage the union of the files staged here and the files of OTHER: a VERSION of this
    directory's asset (0.0.1), or CLASS/ASSET[/VERSION] of another asset of the same class
    (its latest version without one). The files OTHER adds are placed in the work tree and
    staged; 'ama upload' then makes the union the asset's next version. A version of
    another asset is also staged as an input labelled "union" (see 'ama inputs').

    Files are joined by object id: only objects the asset store lacks are fetched from the
    remote, and nothing is copied into the store.

    A path both sides hold with other content, or that is a file on one side and a folder
    on the other, is a conflict. Without --ours or --theirs, conflicts are listed and
    nothing changes (exit status 1). --ours keeps this directory's file at each conflict,
    --theirs takes OTHER's (removing what stands in its way). To combine both by hand, run
    the union with --ours, edit each conflicting file (see OTHER's with 'ama cp
    OTHER:PATH FILE') and stage it with 'ama update'.

    A file the union would write must not hold changes that are not staged, and an
    untracked file must not stand where a new one goes: the union refuses, changing
    nothing.

    With --json: {"other", "manifest", "added", "replaced", "removed", "conflicts",
    "side", "received", "input"}, each conflict {"path", "ours", "theirs"} (TYPE:ID, or "folder");
    when conflicts stop it, the same object with "conflicts" and nothing added, and exit
    status 1.
    """
    from ama.porcelain.union import UnionConflicts, union

    asset = open_asset()
    try:
        result = union(asset, other, side)
    except UnionConflicts as e:
        if as_json:
            emit_json({"other": other, "manifest": None, "added": [], "replaced": [],
                       "removed": [], "conflicts": [c.to_json() for c in e.conflicts],
                       "side": None, "received": 0, "input": False})
        raise
    if as_json:
        emit_json(result.to_json())
        return
    resolved = (f", {len(result.conflicts)} conflict(s) resolved with --{side}"
                if result.conflicts else "")
    note(f"Staged the union with {result.other}: {len(result.added)} file(s) added, "
         f"{len(result.replaced)} replaced, {len(result.removed)} removed{resolved}", quiet)
