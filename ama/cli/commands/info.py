"""ama info: an asset or a version, as the remote knows it; --hash for the asset hash."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.command import shown as escaped
from ama.cli.commands._metadata import METADATA_EXIT_CODES, complete_asset, remote_option, target
from ama.cli.commands._porcelain import emit_json, json_option


@command(
    "info",
    examples=[
        ("Show the asset of the current directory and the version it holds:", "ama info"),
        ("Show an asset and all its versions:", "ama info ml-models/1"),
        ("Show one version, by alias:", "ama info ml-models/prod-resnet/0.0.1"),
        ("Print the asset hash (the id of the version's root tree):", "ama info --hash"),
        ("Print a version's metadata as JSON:", "ama info ml-models/1/0.0.0 --metadata"),
        ("Where each file of the version here lies in the project's storage:",
         "ama info --url"),
        ("URLs that read each file of a version without credentials, for a script:",
         "ama info ml-models/1/0.0.0 --url --presign --json"),
        ("Find other versions with exactly the same files:",
         "ama find --class ml-models --hash $(ama info --hash)"),
    ],
    see_also=["ama-list(1)", "ama-find(1)", "ama-inputs(1)", "ama-asset(1)"],
    exit_codes=METADATA_EXIT_CODES,
)
@click.argument("name", required=False, shell_complete=complete_asset)
@click.option("--hash", "only_hash", is_flag=True,
              help="Print only the asset hash: the root tree id of the version.")
@click.option("--metadata", "only_metadata", is_flag=True,
              help="Print only the version's metadata, as JSON (fetching its manifest).")
@click.option("--url", "only_urls", is_flag=True,
              help="Print only where each file of the version lies: PATH, a tab, the URL of "
                   "its object in the project's storage (of its pack for a small file, then "
                   "a tab and bytes=FIRST-LAST, its range in the pack).")
@click.option("--presign", is_flag=True,
              help="With --url, URLs that read each object without the storage's "
                   "credentials (presigned by S3 or GCS, valid for a limited time).")
@remote_option
@json_option
def command(name: str | None, only_hash: bool, only_metadata: bool, only_urls: bool,
            presign: bool, remote: str | None, as_json: bool) -> None:
    """Show an asset (NAME: CLASS/ORDINAL or CLASS/ALIAS) with its title, description,
    tags, aliases and versions, or one version of it (CLASS/ASSET/VERSION) with its asset
    hash, author, message, inputs and the versions made from it. Without NAME: the asset
    of the current directory and the version it holds.

    The asset hash is the id of the version's root tree: two versions with the same files
    at the same paths have the same hash. 'ama info --hash' in an asset directory needs no
    remote; in one not uploaded yet it prints the hash of the staged files, the hash the
    first version will have if they are uploaded as they are.

    --url prints where each file of the version (the latest, without one named) lies:
    its object's URL in the project's storage, STORAGE/objects/ab/cdef... (file://,
    s3:// or gs://, read with the storage's own credentials); a small file stored in a
    pack shows its pack, STORAGE/packs/ab/cdef..., and bytes=FIRST-LAST, where the file
    lies in it (ama-format(5) PACKS; with --json, "range"). With --presign, on a server
    whose storage is S3 or GCS, each URL is presigned instead: anyone holding it can read
    that object until it expires; on a server whose storage is a folder it is the
    server's object route, which needs a token; the embedded remote's file:// URLs need
    nothing.

    With --json: {"asset", "version", "hash", "message", "metadata", "inputs",
    "dependents", "versions"} (message, metadata and inputs are null when the version's
    manifest is not in the asset store); with --url, a list of {"path", "id", "size",
    "url", "expires"} ("expires": seconds a presigned URL stays valid, else null).
    """
    from ama.plumbing.store import Store
    from ama.plumbing.transport import HttpTransport
    from ama.porcelain.info import info

    if sum((only_hash, only_metadata, only_urls)) > 1:
        raise click.UsageError("--hash, --metadata and --url each print one thing: pick one")
    if presign and not only_urls:
        raise click.UsageError("--presign goes with --url")
    if only_urls:
        _urls(name, remote, presign, as_json)
        return
    if only_hash and name is None and not as_json:
        from ama.cli.commands._porcelain import open_asset
        from ama.porcelain.info import asset_hash

        click.echo(asset_hash(open_asset()))
        return
    where, ref = target(name, remote, version=None)
    shown = info(where, ref, Store.open().objects, fetch_manifest=only_metadata)
    if only_metadata:
        if shown.manifest is None:
            from ama.plumbing.errors import NotFound

            raise NotFound(f"asset {ref} has no version yet, so no metadata")
        emit_json(shown.manifest.metadata)
        return
    if only_hash:
        if shown.hash is None:
            from ama.plumbing.errors import NotFound

            raise NotFound(f"asset {ref} has no version yet, so no asset hash")
        if as_json:
            emit_json({"name": shown.asset["name"], "version": shown.version["version"]
                       if shown.version else None, "hash": shown.hash})
        else:
            click.echo(shown.hash)
        return
    if as_json:
        emit_json(shown.to_json())
        return
    a = shown.asset
    out = [f"asset:       {a['name']}"]
    if a.get("aliases"):
        out.append(f"aliases:     {', '.join(a['class'] + '/' + x for x in a['aliases'])}")
    out.append(f"title:       {a.get('title') or '-'}")
    if a.get("description"):
        out.append(f"description: {a['description']}")
    out.append(f"tags:        {', '.join(a.get('tags') or []) or '-'}")
    out.append(f"status:      {a.get('status') or 'active'}")
    out.append(f"project:     {where.project} on {where.name}")
    v = shown.version
    if v is None:
        out.append("no version yet")
    else:
        label = "version:" if ref.version else "latest:"
        out.append(f"{label:<12} {v['version']}")
        out.append(f"hash:        {v['tree']}")
        out.append(f"manifest:    {v['manifest']}")
        email = f" <{v['author_email']}>" if v.get("author_email") else ""
        out.append(f"created:     {v['created']} by {v['author']}{email}")
        if isinstance(where.transport, HttpTransport) and v.get("uploader"):
            # On a server the uploading account is someone; the embedded remote's is not.
            out.append(f"uploaded:    {v.get('uploaded')} by {v['uploader']}")
        m = shown.manifest
        if m is not None:
            out.append(f"message:     {m.message}")
            for i in m.inputs:
                out.append(f"input:       {i.name} ({i.label})")
        for d in shown.dependents:
            out.append(f"used by:     {d['name']}/{d['version']} ({d.get('label') or '-'})")
    if shown.versions:
        out.append("versions:")
        for item in shown.versions:
            out.append(f"  {item['version']}\t{item['created']}\t{item['author']}")
    click.echo(escaped("\n".join(out)))  # titles, messages, names: others wrote them


def _urls(name: str | None, remote: str | None, presign: bool, as_json: bool) -> None:
    """Print where each file of the version lies (ama info --url)."""
    from ama.cli.command import write_records
    from ama.plumbing.store import Store
    from ama.porcelain.config import Config
    from ama.porcelain.locate import file_urls

    where, ref = target(name, remote, version=None)
    parallelism = int(Config.open().get("transfer.parallelism"))
    found = file_urls(where, ref, Store.open().objects, presign=presign,
                      parallelism=parallelism)
    if as_json:
        emit_json([f.to_json() for f in found])
        return
    write_records(f.to_text() for f in found)
