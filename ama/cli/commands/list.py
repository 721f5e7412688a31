"""ama list: the assets of a class on the remote."""

from __future__ import annotations

import click

from ama.cli.command import command
from ama.cli.commands._metadata import METADATA_EXIT_CODES, complete_class, remote_option
from ama.cli.commands._porcelain import emit_json, json_array_option


@command(
    "list",
    examples=[
        ("List the models:", "ama list --class ml-models"),
        ("The same, naming the class as an argument:", "ama list ml-models"),
        ("Inside an asset directory, list the assets of its class:", "ama list"),
        ("Where the objects of each asset live (remote and storage URL):",
         "ama list ml-models -l"),
        ("The deleted assets of a class (to restore one with 'ama asset restore'):",
         "ama list ml-models --deleted"),
        ("Names of the assets tagged 'vision', for a script:",
         "ama list ml-models --json | jq -r '.[] | select(.tags | index(\"vision\")) | .name'"),
    ],
    see_also=["ama-info(1)", "ama-find(1)", "ama-clone(1)"],
    exit_codes=METADATA_EXIT_CODES,
)
@click.argument("cls_arg", metavar="[CLASS]", required=False, shell_complete=complete_class)
@click.option("--class", "cls_opt", metavar="CLASS", shell_complete=complete_class,
              help="The class whose assets to list.")
@click.option("-l", "--long", "long", is_flag=True,
              help="Also show where each asset's objects live: the remote and the storage "
                   "URL of its project.")
@click.option("--deleted", is_flag=True,
              help="List only the deleted assets of the class (see 'ama asset delete').")
@remote_option
@json_array_option
def command(cls_arg: str | None, cls_opt: str | None, long: bool, deleted: bool,
            remote: str | None, as_json: bool) -> None:
    """List the assets of a class in the active project of the remote: name, aliases,
    latest version, status (active, deprecated or obsolete) and title. Without a class,
    the class of the asset directory you are in. Deleted assets are left out, unless
    --deleted asks for them alone.

    With -l, each asset also shows where its objects live: the name of the remote and the
    URL of the project's storage (file://, s3:// or gs://), under which each object is
    objects/ab/cdef... (see 'ama info --url' for a version's files).

    With --json: a list of {"name", "ordinal", "aliases", "title", "tags", "latest",
    "versions", "status", "deleted"} ("deleted": the time it was deleted, or null), and
    with -l "remote" and "storage".
    """
    from ama.plumbing.errors import BadInput
    from ama.porcelain.config import Config
    from ama.porcelain.info import connect, connect_asset
    from ama.porcelain.list import list_assets

    if cls_arg and cls_opt and cls_arg != cls_opt:
        raise BadInput(f"two classes given: {cls_arg} and {cls_opt}", "give one")
    cls = cls_arg or cls_opt
    if cls is None:
        from ama.plumbing.worktree import NotAnAssetDir
        from ama.porcelain.asset import Asset

        try:
            asset = Asset.open()
        except NotAnAssetDir:
            raise BadInput("which class? give one, or run this in an asset directory",
                           "list the classes with 'ama class list', then "
                           "'ama list --class CLASS'") from None
        cls = asset.head.class_name
        where = connect(asset.config, remote) if remote else connect_asset(asset)
    else:
        where = connect(Config.open(), remote)
    assets = list_assets(where, cls, deleted=deleted)
    place: dict[str, str] = {}
    if long:
        from ama.porcelain.locate import storage_of

        place = {"remote": where.name, "storage": storage_of(where)}
    if as_json:
        emit_json([{**a.to_json(), **place} for a in assets])
        return
    if not assets:
        what = "deleted assets" if deleted else "assets"
        click.echo(f"no {what} of class {cls} yet in project {where.project}", err=True)
        return
    head: tuple[str, ...] = ("NAME", "ALIAS", "LATEST", "STATUS")
    extra: tuple[str, ...] = ()
    if long:
        head += ("REMOTE", "STORAGE")
        extra = (place["remote"], place["storage"])
    rows = [(a.name, ",".join(a.aliases) or "-", a.latest or "-",
             "deleted" if a.deleted else a.status, *extra, a.title) for a in assets]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    for r in [(*head, "TITLE"), *rows]:
        click.echo(("  ".join(f"{r[i]:<{w}}" for i, w in enumerate(widths))
                    + f"  {r[-1]}").rstrip())
