"""ama history: what changed in each version of the asset."""

from __future__ import annotations

import click

from ama.cli.command import command, shown
from ama.cli.commands._porcelain import emit_json, json_array_option, open_asset


@command(
    "history",
    examples=[("What each version of the asset here changed:", "ama history"),
              ("For a script:", "ama history --json | jq '.[0].changes'")],
    see_also=["ama-versions(1)", "ama-diff(1)"],
    exit_codes={0: "success", 3: "not an asset directory, or never uploaded",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
@json_array_option
def command(as_json: bool) -> None:
    """Show each version of the asset here, newest first: its number, time, author and
    message, and the files it added (A), modified (M) and deleted (D)."""
    from ama.porcelain.history import history

    entries = history(open_asset())
    if as_json:
        emit_json([e.to_json() for e in entries])
        return
    out = []
    for e in entries:
        v = e.version
        out.append(f"{v.name} {v.version}{' (here)' if v.current else ''}")
        out.append(f"  {v.created or ''}  {v.author or ''}")
        out.append(f"  {e.message}")
        out.extend(f"    {c.status}\t{c.path}" for c in e.changes)
        out.append("")
    click.echo(shown("\n".join(out).rstrip("\n")))  # messages and names others wrote
