"""A class's visualisation rules, applied to the files on one page of a version.

A class's ``visualisation`` maps gitignore-style patterns to viewers (ama-protocol(7); read
by :func:`ama.plumbing.rules.preview_rules`, as ``ama report`` reads them): each file takes
the first rule whose pattern matches its path, shown as ``image`` (a thumbnail), ``table``
(the first ``rows`` rows of a CSV, 20 unless the rule's options say) or ``text`` (the head
of the file; JSON pretty-printed). A page shows
at most :data:`MAX_PREVIEWS` previews and reads at most :data:`HEAD_BYTES` of each file, so
a page costs the same whatever the files hold.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

from ama.plumbing.rules import preview_rules

MAX_PREVIEWS = 12
HEAD_BYTES = 64 * 1024
TEXT_BYTES = 16 * 1024


@dataclass
class Preview:
    path: str
    id: str
    size: int
    show: str
    rows: list[list[str]] = field(default_factory=list)
    text: str = ""
    truncated: bool = False


def plan(visualisation: Any, files: list[dict[str, Any]]
         ) -> list[tuple[dict[str, Any], str, int]]:
    """The files to preview, each with how and how many rows: at most MAX_PREVIEWS."""
    rules = preview_rules(visualisation)
    chosen = []
    for item in files:
        for spec, show, rows in rules:
            if spec.match_file(item["path"]):
                chosen.append((item, show, rows))
                break
        if len(chosen) == MAX_PREVIEWS:
            break
    return chosen


def render(item: dict[str, Any], show: str, rows: int, head: bytes) -> Preview:
    """The preview of one file from the first bytes of it (``head``)."""
    preview = Preview(item["path"], item["id"], item["size"], show)
    partial = item["size"] > len(head)
    if show == "table":
        text = head.decode("utf-8", "replace")
        lines = text.splitlines()
        if partial and lines:
            lines = lines[:-1]  # the last line read may be cut in the middle
        table = list(csv.reader(io.StringIO("\n".join(lines))))
        preview.rows = table[:rows + 1]
        preview.truncated = partial or len(table) > rows + 1
    elif show == "text":
        text = head[:TEXT_BYTES].decode("utf-8", "replace")
        if not partial and item["path"].lower().endswith(".json"):
            try:
                text = json.dumps(json.loads(head), indent=2, ensure_ascii=False)[:TEXT_BYTES]
            except ValueError:
                pass
        preview.text = text
        preview.truncated = item["size"] > TEXT_BYTES
    return preview
