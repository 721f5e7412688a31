"""ama status: what is staged, changed, deleted and new in the asset directory."""

from __future__ import annotations

import sys

from ama.cli.command import command
from ama.cli.commands._porcelain import emit_json, json_option, open_asset


@command(
    "status",
    examples=[
        ("See what the next upload would hold:", "ama status"),
        ("The same for a script:", "ama status --json | jq .staged"),
    ],
    see_also=["ama-add(1)", "ama-update(1)", "ama-discard(1)", "ama-diff(1)"],
    exit_codes={0: "success", 2: "a damaged .ama/HEAD or index",
                3: "not an asset directory, or the version HEAD names is not in the store"},
)
@json_option
def command(as_json: bool) -> None:
    """Show the asset and version the directory holds, and its files that are staged
    (new, modified or deleted since that version), changed or deleted since they were
    staged, untracked, or that cannot be added. Only files whose stat changed since they
    were staged are read.

    With --json: {"asset", "class", "version", "manifest", "staged": {"new", "modified",
    "deleted"}, "modified", "deleted", "untracked", "unsupported": [{"path", "problem"}],
    "tracked", "uploaded", "clean"}; paths are from the asset root.
    """
    from ama.porcelain.status import status

    result = status(open_asset())
    if as_json:
        emit_json(result.to_json())
        return
    head = result.head
    out: list[str] = []
    if head.is_temp:
        out.append(f"Asset {head.name} (class {head.class_name}), not uploaded yet")
    else:
        out.append(f"Asset {head.name}, version {head.version}")
    if result.has_staged:
        out.append("Staged for the next upload:")
        out.extend(f"  new:      {p}" for p in result.staged_new)
        out.extend(f"  modified: {p}" for p in result.staged_modified)
        out.extend(f"  deleted:  {p}" for p in result.staged_deleted)
    if result.has_unstaged:
        out.append("Changed since staged (stage: ama update PATH…; undo: ama discard PATH…):")
        out.extend(f"  modified: {p}" for p in result.modified)
        out.extend(f"  deleted:  {p}" for p in result.deleted)
    if result.untracked:
        out.append("Untracked (stage: ama add PATH…):")
        out.extend(f"  {p}" for p in result.untracked)
    if result.unsupported:
        out.append("Cannot be added (remove them or list them in .amaignore):")
        out.extend(f"  {p}: {why}" for p, why in result.unsupported)
    if result.uploaded:
        out.append(f"Uploaded: the directory holds {head.name} {head.version} exactly"
                   + (", plus untracked files" if result.untracked else ""))
    elif result.clean:
        out.append("Nothing staged and nothing to add")
    elif not result.has_staged and not result.has_unstaged and head.is_temp:
        out.append("Nothing staged yet")
    sys.stdout.write("\n".join(out) + "\n")
