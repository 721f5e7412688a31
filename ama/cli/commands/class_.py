"""ama class: create and list the asset classes known on this machine."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from ama.cli.command import group, positional_or_option, shown
from ama.cli.commands._metadata import complete_class
from ama.cli.commands._porcelain import emit_json, json_array_option, json_option

if TYPE_CHECKING:
    from ama.porcelain.classes import AssetClass


@group(
    "class",
    examples=[
        ("Create a class for models:", "ama class init ml-models --description 'Trained models'"),
        ("Create a class whose versions' metadata must follow a JSON Schema:",
         "ama class init imagenet-subsets --schema schema.json"),
        ("Show CSV files as tables and PNG images as images in viewers of the class:",
         "echo '{\"*.csv\": \"table\", \"*.png\": \"image\"}' > viewers.json && "
         "ama class update ml-models --visualisation viewers.json"),
        ("List classes:", "ama class list"),
        ("Bring the classes of the active project from the remote:", "ama class fetch"),
    ],
    see_also=["ama-init(1)"],
    exit_codes={0: "success", 1: "the class exists already (here or on the remote)",
                2: "a bad class name, schema, rules or visualisation file",
                3: "no such class or file",
                4: "not logged in or not allowed", 5: "the remote cannot be reached"},
)
def command() -> None:
    """Create, list and show asset classes.

    A class is a named category of assets in a project (ml-models, imagenet-subsets): the
    JSON Schema its versions' metadata must follow, its validation rules and its
    visualisation rules. Classes are kept in the asset store under
    projects/<remote>/<project>/classes/.

    The rules (--rules FILE, a JSON object; every key optional) bound each version's files:
    required_files and forbidden_files (lists of gitignore-style patterns), max_total_size
    and max_file_size (bytes), max_file_count; and an asset's description, checked by the
    remote whenever it changes ('ama asset set'): max_tags, tag_pattern (a regular
    expression each tag must match whole, run by RE2), max_title_length and
    max_description_length (characters).

    The visualisation rules (--visualisation FILE, JSON, or YAML for a name ending .yaml
    or .yml) map gitignore-style patterns to the viewer that shows the matching files: one
    of table, image, text, json, markdown, pdf, audio, video, html or none, or an object
    {"viewer": VIEWER, "options": {...}}. They are checked here and on the remote, and
    kept with the class.
    """


def _done(cls: AssetClass, verb: str, as_json: bool) -> None:
    """Say that ``cls`` was created or updated (``verb``), or print it as JSON."""
    if as_json:
        emit_json(cls.to_json())
    else:
        click.echo(f"{verb} class {cls.name}")


def _edit(name: str) -> None:
    """Open the class editor of ``name``: on the dashboard a server remote serves, or on
    one served here for a folder remote until Ctrl-C; what was printed before is flushed
    first, so that it comes before the editor's lines."""
    sys.stdout.flush()
    from ama.cli.commands.dashboard import open_in_browser, serve
    from ama.porcelain.config import Config
    from ama.porcelain.dashboard import editor_path, open_dashboard
    from ama.porcelain.remotes import get

    config = Config.open()
    info = get(config)
    path = editor_path(info.project, name)
    if info.kind != "file":
        url = info.url.rstrip("/") + path
        click.echo(f"Edit the class at: {url}")
        open_in_browser(url)
        return
    serve(open_dashboard(config, None, 0, next_page=path), "Edit the class at (signs in once)",
          True)


_EDIT_HELP = ("Then open the class editor in the browser: the server's dashboard, or for a "
              "folder remote one served on 127.0.0.1 until Ctrl-C.")


@command.command("init", examples=[
    ("Create a class with a metadata schema and rules:",
     "ama class init ml-models --schema schema.json --rules rules.json"),
    ("Create a class and define its schema and rules in the browser:",
     "ama class init ml-models --edit"),
], exit_codes={0: "success", 1: "the class exists already (here or on the remote), "
                                "without --edit",
               2: "a bad class name, schema, rules or visualisation file", 3: "no such file",
               4: "not logged in or not allowed", 5: "the remote cannot be reached"})
@click.argument("name")
@click.option("--schema", "schema_file", metavar="FILE",
              help="A JSON Schema that versions' metadata must follow.")
@click.option("--rules", "rules_file", metavar="FILE", help="Validation rules, as JSON.")
@click.option("--visualisation", "visualisation_file", metavar="FILE",
              help="Visualisation rules, pattern → viewer, as JSON or YAML.")
@click.option("--description", default="", help="One line saying what the class holds.")
@click.option("--edit", is_flag=True, help=_EDIT_HELP + " A class that exists already is "
              "opened there.")
@json_option
def init(name: str, schema_file: str | None, rules_file: str | None,
         visualisation_file: str | None, description: str, edit: bool,
         as_json: bool) -> None:
    """Create the class NAME (see 'ama class --help' for the rules and visualisation
    files)."""
    from ama.porcelain.classes import ClassExists, LocalClasses, init_class, remote_publisher
    from ama.porcelain.config import Config

    try:
        cls = init_class(LocalClasses.open(), name, description, schema_file, rules_file,
                         publish=remote_publisher(Config.open()),
                         visualisation_file=visualisation_file)
    except ClassExists as e:
        if not edit:
            raise
        click.echo(f"{e.message}: opening its editor")
    else:
        _done(cls, "Created", as_json)
    if edit:
        _edit(name)


@command.command("update", examples=[
    ("Limit the tags of the class's assets to five lowercase words:",
     "echo '{\"max_tags\": 5, \"tag_pattern\": \"[a-z]+\"}' > tag-rules.json && "
     "ama class update ml-models --rules tag-rules.json"),
    ("Change the description only:", "ama class update ml-models --description 'Models'"),
], exit_codes={0: "success", 2: "a bad schema, rules or visualisation file, or nothing to "
                                "change", 3: "no such class or file",
               4: "not logged in, or not an admin of the project",
               5: "the remote cannot be reached"})
@click.argument("name", shell_complete=complete_class)
@click.option("--schema", "schema_file", metavar="FILE",
              help="Replace the JSON Schema that versions' metadata must follow.")
@click.option("--rules", "rules_file", metavar="FILE",
              help="Replace the validation rules, as JSON.")
@click.option("--visualisation", "visualisation_file", metavar="FILE",
              help="Replace the visualisation rules, pattern → viewer, as JSON or YAML.")
@click.option("--description", default=None, help="Replace the one-line description.")
@click.option("--edit", is_flag=True, help=_EDIT_HELP + " Alone, it only opens the editor.")
@json_option
def update(name: str, schema_file: str | None, rules_file: str | None,
           visualisation_file: str | None, description: str | None, edit: bool,
           as_json: bool) -> None:
    """Change the class NAME on the remote (admins of the project): what is given is
    replaced, the rest stays as it is; the class is then cached here as the remote has
    it. Rules and schemas apply to versions committed and changes made from then on.
    See 'ama class --help' for the files."""
    from ama.porcelain.classes import update_class
    from ama.porcelain.config import Config

    if not (edit and description is None and schema_file is None and rules_file is None
            and visualisation_file is None):
        cls = update_class(Config.open(), name, description, schema_file, rules_file,
                           visualisation_file)
        _done(cls, "Updated", as_json)
    if edit:
        _edit(name)


@command.command("fetch", examples=[
    ("Bring the classes from the remote:",
     "ama class fetch"),
])
@json_array_option
def fetch(as_json: bool) -> None:
    """Bring every class of the active project, with its schema and rules, from the
    remote into the asset store."""
    from ama.porcelain.config import Config
    from ama.porcelain.fetch import fetch_classes

    classes = fetch_classes(Config.open())
    if as_json:
        emit_json([c.to_json() for c in classes])
        return
    for c in classes:
        click.echo(c.name)


@command.command("list", examples=[
    ("List the classes of the active project:",
     "ama class list"),
])
@json_array_option
def list_(as_json: bool) -> None:
    """List the classes known on this machine, with their descriptions."""
    from ama.porcelain.classes import LocalClasses

    classes = LocalClasses.open().list()
    if as_json:
        emit_json([c.to_json() for c in classes])
        return
    for c in classes:
        click.echo(shown(f"{c.name}\t{c.description}") if c.description else c.name)


@command.command("info", examples=[
    ("Show a class's schema and rules:",
     "ama class info ml-models"),
])
@click.argument("name_arg", metavar="NAME", required=False, shell_complete=complete_class)
@click.option("-n", "--name", help="The class to show (or give it as NAME).")
@json_option
def info(name_arg: str | None, name: str | None, as_json: bool) -> None:
    """Show the class NAME: description, schema and rules."""
    import json

    from ama.porcelain.classes import LocalClasses

    name = positional_or_option(name_arg, name, "NAME", "--name")
    cls = LocalClasses.open().get(name)
    if as_json:
        emit_json(cls.to_json())
        return
    click.echo(f"name: {cls.name}")
    click.echo(shown(f"description: {cls.description}"))
    click.echo(f"created: {cls.created}")
    click.echo("schema: " + (json.dumps(cls.schema, indent=2) if cls.schema else "none"))
    click.echo("rules: " + (json.dumps(cls.rules, indent=2) if cls.rules else "none"))
    visualisation = cls.extra.get("visualisation")
    click.echo("visualisation: "
               + (json.dumps(visualisation, indent=2) if visualisation else "none"))
