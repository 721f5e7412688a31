"""A class's visualisation rules, applied to the files on one page of a version.

A class's ``visualisation`` is ``{"files": [{"pattern", "show", "rows"?}, ...]}``: each file
takes the first rule whose gitignore-style ``pattern`` matches its path, and ``show`` says
how the version page shows it: ``image`` (a thumbnail), ``table`` (the first ``rows`` rows of
a CSV, 20 unless said) or ``text`` (the head of the file; JSON pretty-printed). A page shows
at most :data:`MAX_PREVIEWS` previews and reads at most :data:`HEAD_BYTES` of each file, so
a page costs the same whatever the files hold.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import Any

import pathspec

MAX_PREVIEWS = 12
HEAD_BYTES = 64 * 1024
TEXT_BYTES = 16 * 1024
SHOWS = ("image", "table", "text")


@dataclass
class Preview:
    path: str
    id: str
    size: int
    show: str
    rows: list[list[str]] = field(default_factory=list)
    text: str = ""
    truncated: bool = False


def rules_of(visualisation: Any) -> list[tuple[pathspec.GitIgnoreSpec, str, int]]:
    """The (pattern, show, rows) of a class's visualisation rules; malformed rules are left
    out (the page shows the files without them)."""
    if not isinstance(visualisation, dict) or not isinstance(visualisation.get("files"), list):
        return []
    rules = []
    for rule in visualisation["files"]:
        if not isinstance(rule, dict) or rule.get("show") not in SHOWS \
                or not isinstance(rule.get("pattern"), str):
            continue
        rows = rule.get("rows", 20)
        rows = rows if isinstance(rows, int) and 0 < rows <= 200 else 20
        rules.append((pathspec.GitIgnoreSpec.from_lines([rule["pattern"]], backend="re2"),
                      rule["show"], rows))
    return rules


def plan(visualisation: Any, files: list[dict[str, Any]]
         ) -> list[tuple[dict[str, Any], str, int]]:
    """The files to preview, each with how and how many rows: at most MAX_PREVIEWS."""
    rules = rules_of(visualisation)
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
