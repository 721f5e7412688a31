"""ama report: one version as a self-contained HTML page, readable offline."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._metadata import complete_asset, remote_option


@command(
    "report",
    examples=[
        ("A page of the version this directory holds:", "ama report -o report.html"),
        ("A page of one version, named by alias:", "ama report ml-models/prod/0.0.1 -o prod.html"),
        ("The latest version of an asset, written to stdout:",
         "ama report ml-models/2 -o - > latest.html"),
    ],
    see_also=["ama-info(1)", "ama-history(1)", "ama-inputs(1)", "ama-ls-tree(1)"],
    exit_codes={0: "success", 1: "an object from the remote did not match its id",
                2: "bad usage or a bad name",
                3: "no such asset or version, a version not uploaded yet, or not an asset "
                   "directory",
                4: "not logged in, or not allowed by your role in the project",
                5: "the remote cannot be reached"},
)
@click.argument("name", required=False, metavar="[NAME/VERSION]", shell_complete=complete_asset)
@click.option("-o", "--output", metavar="FILE",
              help="Where to write the page; '-' for stdout (default: "
                   "CLASS-ORDINAL-VERSION.html in the current directory).")
@remote_option
def command(name: str | None, output: str | None, remote: str | None) -> None:
    """Write one version as a single HTML page that any browser opens offline: its
    asset's title, description, tags and status; the version's message, author, asset
    hash and metadata; its lineage (the versions it was made from and those made from
    it); the asset's history; the files with their sizes and ids, as a folder tree; and
    previews of the files the class's visualisation rules pick (image thumbnails, the
    first rows of a CSV, the head of a text or JSON file).

    NAME/VERSION is CLASS/ASSET/VERSION (ASSET an ordinal or an alias); CLASS/ASSET alone
    means its latest version. Without NAME: the version the current directory holds.
    Manifests, trees and the few files the previews show are fetched into the asset store
    (verified) when missing.

    The page loads nothing: its stylesheet is inline, images are data: URIs, and its
    Content-Security-Policy forbids scripts and every request. A folder lists at most
    200 files and the page 2,000 files and 1,000 folders (each folder shows how many
    files it holds); the page says what it left out and how to list it all. Previews:
    at most 12 files, other files of up to 8 MiB. Images are thumbnails of at most
    256 pixels on their long side, made with Pillow (pip install 'amapy[report]') from
    images of up to 64 MiB and 40,000,000 pixels (checked before decoding); without
    Pillow the page says so and embeds images of up to 1 MiB as they are.

    Visualisation rules are the class's 'visualisation' JSON: patterns mapped to a
    viewer, {"*.csv": "table", "img/*.png": "image", "*.json": "json"}, or
    {"files": [{"pattern": "*.csv", "show": "table", "rows": 20}]}. Viewers previewed:
    image, table, text, json, markdown.
    """
    import sys

    from ama.cli.commands._metadata import target
    from ama.plumbing.store import Store
    from ama.porcelain.report import render, report

    where, ref = target(name, remote, version=None)
    store = Store.open()
    page = report(where, ref, store.objects)
    html = render(page)
    if output == "-":
        sys.stdout.write(html)
        sys.stdout.flush()
        return
    if output is None:
        v = page.version
        output = f"{v['class']}-{v['ordinal']}-{v['version']}.html"
    from ama.plumbing.durable import write_atomic

    write_atomic(output, html.encode("utf-8"), sync=False)
    click.echo(output)
