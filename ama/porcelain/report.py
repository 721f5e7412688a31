"""``ama report``: one version as a single HTML page that reads offline.

The page carries everything inline: its stylesheet in one ``<style>`` element (allowed by
its hash in the page's Content-Security-Policy, which allows nothing else: no script, no
font, no request of any kind), images as ``data:`` URIs, lineage as inline SVG. Every value
a user supplied (names, titles, messages, metadata, file contents) goes through Jinja2's
autoescaping.

What a page holds is bounded, so that a version of 100,000 files still gives a page a
browser opens at once: the file tree lists folders with their file counts and sizes, at
most :data:`FOLDER_FILES` files a folder and :data:`LISTED_FILES` files and
:data:`LISTED_FOLDERS` folders in all, breadth first (the files shared out over the folders
of each level), and says what it left out and how to list it. Previews read whole objects
(verified as any download is), at most :data:`PREVIEWS` of them, none larger than
:data:`PREVIEW_BYTES`.

Images are embedded as thumbnails (:mod:`ama.plumbing.thumbnails`: at most 256 pixels on
their long side) when Pillow is installed (the ``report`` extra: ``pip install
'amapy[report]'``); a hostile image cannot make the report eat memory, since its pixel count
is checked from its header before any pixel is decoded. Without Pillow the page says so and
embeds images as they are, only those up to :data:`IMAGE_BYTES`.

A class's visualisation rules choose the previews (ama-protocol(7))::

    {"*.csv": "table", "images/*.png": "image", "*.json": {"viewer": "json"}}

A file takes the first rule whose gitignore-style pattern matches its path. ``image``
embeds a PNG, JPEG, GIF or WebP; ``table`` shows the first rows of a CSV (``rows``, in the
its ``options``, 20 unless said); ``text``, ``json`` and
``markdown`` show the head of the file, JSON pretty-printed. Other viewers, and rules that
are not understood, preview nothing.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ama.plumbing import wire
from ama.plumbing.objects import Manifest
from ama.plumbing.odb import FileObjectDatabase
from ama.plumbing.rules import preview_rules
from ama.plumbing.thumbnails import (
    THUMBNAIL_SOURCE_BYTES,
    pillow_available,
    thumbnail,
)
from ama.plumbing.units import human_size
from ama.porcelain.info import AssetRef, Remote, info

LISTED_FILES = 2000
LISTED_FOLDERS = 1000
FOLDER_FILES = 200
HISTORY = 500
LINEAGE = 40
PREVIEWS = 12
PREVIEW_BYTES = 8 * 1024 * 1024
IMAGE_BYTES = 1024 * 1024
HEAD_BYTES = 64 * 1024
TEXT_BYTES = 16 * 1024
_IMAGE_TYPES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
                (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


@dataclass
class FileRow:
    name: str
    path: str
    id: str
    size: int
    kind: str


@dataclass
class Folder:
    """One folder of the version: the files and folders the page lists in it, and what
    it leaves out."""

    name: str
    path: str
    files: list[FileRow] = field(default_factory=list)
    folders: list[Folder] = field(default_factory=list)
    count: int = 0  # files below it, at any depth
    size: int = 0  # their bytes
    hidden_files: int = 0  # direct files not listed
    hidden_folders: int = 0  # direct folders not listed
    hidden_below: int = 0  # files inside the folders not listed

    # every direct file and folder, before the page's limits pick from them
    _all_files: list[FileRow] = field(default_factory=list, repr=False)
    _all_folders: dict[str, Folder] = field(default_factory=dict, repr=False)


@dataclass
class Preview:
    path: str
    id: str
    size: int
    show: str  # image, table, text, or skipped (with a note)
    data_uri: str = ""
    rows: list[list[str]] = field(default_factory=list)
    text: str = ""
    truncated: bool = False
    note: str = ""


@dataclass
class Report:
    """Everything the page of one version shows."""

    asset: wire.AssetRecord
    version: wire.Version
    manifest: Manifest
    project: str
    remote: str
    klass: wire.AssetClass | None
    root: Folder
    dependents: list[wire.Dependent]
    history: list[wire.Version]
    history_hidden: int
    previews: list[Preview]
    generated: str
    thumbnails: bool = True  # False when Pillow is missing and images are embedded as they are

    @property
    def listed_files(self) -> int:
        return _count_listed(self.root)


def _count_listed(folder: Folder) -> int:
    return len(folder.files) + sum(_count_listed(f) for f in folder.folders)


def file_tree(files: Iterable[tuple[str, str, int, str]], listed_files: int = LISTED_FILES,
              listed_folders: int = LISTED_FOLDERS, folder_files: int = FOLDER_FILES
              ) -> Folder:
    """Return the root folder of ``files`` ((path, id, size, kind)), with the files and
    folders to list chosen breadth first within the limits."""
    root = Folder("", "")
    for path, oid, size, kind in files:
        parts = path.split("/")
        here = root
        here.count += 1
        here.size += size
        for i, name in enumerate(parts[:-1]):
            below = here._all_folders.get(name)
            if below is None:
                below = here._all_folders[name] = Folder(name, "/".join(parts[:i + 1]) + "/")
            here = below
            here.count += 1
            here.size += size
        here._all_files.append(FileRow(parts[-1], path, oid, size, kind))
    level = [root]
    while level:
        below_level: list[Folder] = []
        # Shared out over the folders of a level, so that each shows some of its files
        # rather than the first few folders all of theirs.
        share = max(10, listed_files // len(level))
        for folder in level:
            files_here = sorted(folder._all_files, key=lambda f: f.name)
            take = min(len(files_here), folder_files, share, listed_files)
            folder.files = files_here[:take]
            folder.hidden_files = len(files_here) - take
            listed_files -= take
            subs = sorted(folder._all_folders.values(), key=lambda f: f.name)
            keep = min(len(subs), listed_folders)
            folder.folders = subs[:keep]
            listed_folders -= keep
            folder.hidden_folders = len(subs) - keep
            folder.hidden_below = sum(f.count for f in subs[keep:])
            below_level.extend(folder.folders)
            folder._all_files, folder._all_folders = [], {}
        level = below_level
    return root


# -- visualisation rules ---------------------------------------------------------------------


def _plan(visualisation: Any, files: list[FileRow]) -> list[tuple[FileRow, str, int]]:
    rules = preview_rules(visualisation)
    chosen: list[tuple[FileRow, str, int]] = []
    if not rules:
        return chosen
    for item in files:
        for spec, show, rows in rules:
            if spec.match_file(item.path):
                chosen.append((item, show, rows))
                break
        if len(chosen) == PREVIEWS:
            break
    return chosen


def _render_preview(item: FileRow, show: str, rows: int, data: bytes,
                    thumbnails: bool = False) -> Preview:
    preview = Preview(item.path, item.id, item.size, show)
    if show == "image":
        mime = next((m for magic, m in _IMAGE_TYPES if data.startswith(magic)), None)
        if mime is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            mime = "image/webp"
        if mime is None:
            preview.show, preview.note = "skipped", "not a PNG, JPEG, GIF or WebP image"
            return preview
        if thumbnails:
            made = thumbnail(data, mime)
            if isinstance(made, str):
                preview.show, preview.note = "skipped", made
                return preview
            mime, data = made
        preview.data_uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        return preview
    head = data[:HEAD_BYTES]
    partial = len(data) > len(head)
    if show == "table":
        lines = head.decode("utf-8", "replace").splitlines()
        if partial and lines:
            lines = lines[:-1]  # the last line read may be cut in the middle
        table = list(csv.reader(io.StringIO("\n".join(lines))))
        preview.rows = table[:rows + 1]  # the header, then the rows
        preview.truncated = partial or len(table) > rows + 1
        return preview
    text = head[:TEXT_BYTES].decode("utf-8", "replace")
    if not partial and item.path.lower().endswith(".json"):
        try:
            text = json.dumps(json.loads(data), indent=2, ensure_ascii=False)[:TEXT_BYTES]
        except ValueError:
            pass
    preview.text = text
    preview.truncated = len(data) > TEXT_BYTES
    return preview


def previews(remote: Remote, odb: FileObjectDatabase, visualisation: Any,
             files: list[FileRow], parallelism: int = 8,
             thumbnails: bool = False) -> list[Preview]:
    """Return the previews the class's rules ask for, fetching (and verifying) the few
    objects they need that the store lacks; images as thumbnails when ``thumbnails``."""
    from ama.porcelain.download import receive

    plan = _plan(visualisation, files)
    limit = {"image": THUMBNAIL_SOURCE_BYTES if thumbnails else IMAGE_BYTES}
    wanted = [(f.id, f.size) for f, show, _ in plan if f.size <= limit.get(show, PREVIEW_BYTES)]
    if wanted:
        receive(remote.transport, remote.project, odb, wanted, parallelism)
    shown = []
    for item, show, rows in plan:
        most = limit.get(show, PREVIEW_BYTES)
        if item.size > most:
            shown.append(Preview(item.path, item.id, item.size, "skipped",
                                 note=f"larger than the {most // 1024:,} KiB a preview reads"))
            continue
        shown.append(_render_preview(item, show, rows, odb.get(item.id), thumbnails))
    return shown


# -- the report ------------------------------------------------------------------------------


def report(remote: Remote, ref: AssetRef, odb: FileObjectDatabase, parallelism: int = 8,
           now: datetime | None = None) -> Report:
    """Gather the page of the version ``ref`` names (its asset's latest version when it
    names none): the manifest and trees are fetched into ``odb`` when missing, and the
    objects the previews show. Raises :class:`~ama.plumbing.errors.NotFound` and the
    transport's errors."""
    from ama.plumbing.errors import NotFound
    from ama.porcelain.download import version_files

    shown = info(remote, ref, odb, fetch_manifest=True)
    if shown.version is None or shown.manifest is None:
        raise NotFound(f"asset {ref} has no version yet, so nothing to report",
                       "upload one from its asset directory with 'ama upload -m MESSAGE'")
    version = shown.version
    proxies: dict[str, Any] = {}
    files = version_files(odb, version["manifest"], remote.transport, remote.project,
                          parallelism, proxies)
    rows = [(p, e.id, e.size, e.type) for p, e in files.items()]
    root = file_tree(rows)
    klass = remote.transport.get_class(remote.project, version["class"])
    # A proxy file is listed, never previewed: its bytes are at its source, not the remote.
    items = [FileRow(p.rsplit("/", 1)[-1], p, oid, size, kind)
             for p, oid, size, kind in sorted(rows) if p not in proxies]
    thumbnails = pillow_available()
    shown_previews = previews(remote, odb, klass.get("visualisation"), items, parallelism,
                              thumbnails)
    history = shown.versions or remote.transport.versions(remote.project, ref.cls, ref.asset)
    history = list(reversed(history))
    hidden = max(0, len(history) - HISTORY)
    when = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Report(shown.asset, version, shown.manifest, remote.project, remote.name, klass,
                  root, shown.dependents, history[:HISTORY], hidden, shown_previews, when,
                  thumbnails)


def render(page: Report) -> str:
    """Return the page as HTML text."""
    from importlib.resources import files

    import jinja2

    folder = files("ama.porcelain").joinpath("report_page")
    style = folder.joinpath("report.css").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["human"] = human_size
    env.filters["pretty"] = lambda v: json.dumps(v, indent=2, ensure_ascii=False,
                                                  sort_keys=True)
    template = env.from_string(folder.joinpath("report.html").read_text(encoding="utf-8"))
    inputs = list(page.manifest.inputs)
    return template.render(
        r=page, a=page.asset, v=page.version, m=page.manifest, style=style,
        csp=(f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; "
             "base-uri 'none'; form-action 'none'"),
        inputs=inputs[:LINEAGE], inputs_hidden=max(0, len(inputs) - LINEAGE),
        dependents=page.dependents[:LINEAGE],
        dependents_hidden=max(0, len(page.dependents) - LINEAGE),
        lineage=_lineage_layout(len(inputs[:LINEAGE]), len(page.dependents[:LINEAGE])),
        listed=page.listed_files, limits={"folder": FOLDER_FILES, "files": LISTED_FILES},
        image_bytes=IMAGE_BYTES,
    ).lstrip()


def _lineage_layout(inputs: int, dependents: int) -> dict[str, Any]:
    """Where the boxes of the lineage graph go: inputs on the left, the version in the
    middle, dependents on the right, one row each."""
    row, top = 30, 10
    height = max(inputs, dependents, 1) * row + 2 * top
    middle = height / 2
    return {"width": 900, "height": height, "row": row, "top": top, "middle": middle,
            "box": 260, "x_in": 10, "x_me": 320, "x_dep": 630}


