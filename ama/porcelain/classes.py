"""Asset classes known on this machine (``ama class init|update|list|info``).

A class is cached as ``$AMA_HOME/projects/<remote>/<project>/classes/<name>.json``: its name,
description, metadata JSON Schema and validation rules. ``ama init CLASS`` accepts only a
class found there. Creating a class writes it here through :class:`LocalClasses`; once the
remote is reachable, :func:`init_class` is given a ``publish`` callable that sends the class
to the remote first, and the local copy is written only after the remote accepted it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ama.plumbing.durable import write_atomic
from ama.plumbing.errors import AmaError, BadInput, NotFound
from ama.plumbing.jsontext import JSONObject, JSONSchema, parse_json
from ama.plumbing.objects import check_class_name, format_created
from ama.plumbing.rules import check_rules, check_visualisation
from ama.plumbing.rules import check_schema as check_class_schema
from ama.plumbing.store import home_dir
from ama.porcelain.config import Config

# A schema, rules or metadata file larger than a remote's default request limit is a mistake.
MAX_JSON_FILE = 16 * 1024 * 1024


class UnknownClass(NotFound):
    """A class this machine does not know."""


class ClassExists(AmaError):
    """``ama class init`` of a name that is taken."""


@dataclass(frozen=True)
class AssetClass:
    """A class: its name, description, metadata schema and validation rules."""

    name: str
    description: str = ""
    schema: JSONSchema | None = None
    rules: Any = None
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "schema": self.schema,
                "rules": self.rules, "created": self.created, **self.extra}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> AssetClass:
        """The class in ``value``: a cached class's JSON, or a remote's answer
        (:class:`~ama.plumbing.wire.AssetClass`)."""
        known = {"name", "description", "schema", "rules", "created"}
        return cls(name=value["name"], description=value.get("description") or "",
                   schema=value.get("schema"), rules=value.get("rules"),
                   created=value.get("created") or "",
                   extra={k: v for k, v in value.items() if k not in known})


def project_dir(home: Path, remote: str, project: str) -> Path:
    """The cache folder of one project of one remote."""
    return home / "projects" / remote / project


class LocalClasses:
    """The classes cached for one project of one remote."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def open(cls, environ: Mapping[str, str] | None = None) -> LocalClasses:
        """The classes of the active project of the default remote."""
        config = Config.open(environ)
        home = home_dir(environ)
        return cls(project_dir(home, config.get("remote.default"), config.get("project.active"))
                   / "classes")

    def get(self, name: str) -> AssetClass:
        """Return the class ``name``; raise :class:`UnknownClass` with what to run."""
        check_class_name(name)
        try:
            value = json.loads((self.folder / f"{name}.json").read_text(encoding="utf-8"))
        except FileNotFoundError:
            known = self.names()
            listed = f" (known: {', '.join(known)})" if known else " (none is known yet)"
            raise UnknownClass(f"unknown class {name!r}{listed}",
                               f"create it with 'ama class init {name}', or list classes "
                               "with 'ama class list'") from None
        return AssetClass.from_json(value)

    def names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def list(self) -> list[AssetClass]:
        return [self.get(name) for name in self.names()]

    def put(self, cls: AssetClass) -> None:
        check_class_name(cls.name)  # also a remote's answer: it names the file
        self.folder.mkdir(parents=True, exist_ok=True)
        text = json.dumps(cls.to_json(), indent=2, sort_keys=True) + "\n"
        write_atomic(self.folder / f"{cls.name}.json", text.encode("utf-8"))


def load_json_file(path: str | os.PathLike[str], what: str) -> Any:
    """Return the JSON in ``path``; raise :class:`BadInput` naming ``what`` and the problem
    (not JSON, over :data:`MAX_JSON_FILE` bytes, a key given twice, nested too deep)."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_FILE + 1)
    except FileNotFoundError:
        raise NotFound(f"{what} file {path} does not exist") from None
    except OSError as e:
        raise BadInput(f"{what} file {path} cannot be read: {e}") from None
    return parse_json(data, f"{what} file {path}", max_bytes=MAX_JSON_FILE)


def check_schema(schema: Any, where: str) -> JSONSchema:
    """Return ``schema`` if it is a JSON Schema object the remote accepts (the same check,
    :func:`ama.plumbing.rules.check_schema`), else raise :class:`BadInput`."""
    if not isinstance(schema, dict):
        raise BadInput(f"schema {where} must hold a JSON object")
    try:
        check_class_schema(schema)
    except BadInput as e:
        raise BadInput(f"schema {where}: {e.message}", e.hint) from None
    return schema


def load_visualisation(path: str | os.PathLike[str]) -> JSONObject:
    """Return the visualisation rules in ``path`` (JSON, or YAML when its name ends with
    .yaml or .yml), checked as the remote checks them; raise :class:`BadInput` naming the
    file and the problem, NotFound for a missing file."""
    if str(path).endswith((".yaml", ".yml")):
        value = _load_yaml(path)
    else:
        value = load_json_file(path, "visualisation")
    try:
        check_visualisation(value)
    except BadInput as e:
        raise BadInput(f"visualisation file {path}: {e.message}", e.hint) from None
    assert isinstance(value, dict)
    return value


def _load_yaml(path: str | os.PathLike[str]) -> Any:
    """The YAML document in ``path``, held to the rules of every JSON document ama reads
    (no key twice, bounded size and depth, 64-bit integers): YAML's own loader would keep
    the last of two keys silently."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def mapping(loader: Loader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)
            if key in seen:
                raise BadInput(f"visualisation file {path}: key {key!r} is given twice")
            seen.add(key)
        return dict(loader.construct_mapping(node))

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_JSON_FILE + 1)
    except FileNotFoundError:
        raise NotFound(f"visualisation file {path} does not exist") from None
    if len(data) > MAX_JSON_FILE:
        raise BadInput(f"visualisation file {path} is over {MAX_JSON_FILE} bytes")
    try:
        value = yaml.load(data, Loader=Loader)  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as e:
        raise BadInput(f"visualisation file {path} is not YAML: {e}") from None
    # Through the one JSON parser: depth, integer range, and only JSON's types.
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        raise BadInput(f"visualisation file {path} holds values JSON cannot (dates, "
                       "sets...)") from None
    return parse_json(text.encode(), f"visualisation file {path}", max_bytes=MAX_JSON_FILE * 2)


def init_class(classes: LocalClasses, name: str, description: str = "",
               schema_file: str | None = None, rules_file: str | None = None,
               publish: Callable[[AssetClass], AssetClass] | None = None,
               now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
               visualisation_file: str | None = None) -> AssetClass:
    """Create the class ``name`` and return it.

    Every input is checked before anything is written. ``publish`` (once the remote exists)
    sends the class to the remote and returns what the remote recorded. Raises
    :class:`ClassExists`, :class:`BadInput` or :class:`NotFound`.
    """
    check_class_name(name)
    if name in classes.names():
        raise ClassExists(f"class {name!r} already exists",
                          f"see it with 'ama class info -n {name}'")
    schema = None
    if schema_file is not None:
        schema = check_schema(load_json_file(schema_file, "schema"), schema_file)
    rules = None
    if rules_file is not None:
        rules = _checked_rules(rules_file)
    extra: dict[str, Any] = {}
    if visualisation_file is not None:
        extra["visualisation"] = load_visualisation(visualisation_file)
    if "\n" in description:
        raise BadInput("a class description must be one line")
    cls = AssetClass(name, description, schema, rules, format_created(now()), extra)
    if publish is not None:
        cls = publish(cls)
    classes.put(cls)
    return cls


def remote_publisher(config: Config, remote: str | None = None
                     ) -> Callable[[AssetClass], AssetClass]:
    """Return the ``publish`` callable of :func:`init_class` for the remote ``remote``
    (default: the default remote) and the active project: it refuses a class the remote
    has already (:class:`ClassExists`) and otherwise creates it there."""

    def publish(cls: AssetClass) -> AssetClass:
        from ama.porcelain.remotes import open_remote

        transport, info = open_remote(config, remote)
        try:
            transport.get_class(info.project, cls.name)
        except NotFound:
            pass
        else:
            raise ClassExists(f"class {cls.name!r} already exists on the remote {info.name}",
                              "bring it here with 'ama class fetch'")
        stored = transport.put_class(info.project, cls.name, cls.description, cls.schema,
                                     cls.rules, cls.extra.get("visualisation"))
        return AssetClass.from_json({**stored, "created": stored.get("created") or cls.created})

    return publish


def _checked_rules(path: str) -> Any:
    rules = load_json_file(path, "rules")
    try:
        check_rules(rules)
    except BadInput as e:
        raise BadInput(f"rules file {path}: {e.message}", e.hint) from None
    return rules


def update_class(config: Config, name: str, description: str | None = None,
                 schema_file: str | None = None, rules_file: str | None = None,
                 visualisation_file: str | None = None, remote: str | None = None
                 ) -> AssetClass:
    """Replace what is given of class ``name``'s description, schema, rules and
    visualisation rules on the remote (project admins), keeping the rest as the remote has
    it, and cache the result here. Every file is checked before the remote is asked.
    Raises BadInput, NotFound (no such class or file), and the transport's errors."""
    from ama.porcelain.remotes import open_remote

    check_class_name(name)
    if description is not None and "\n" in description:
        raise BadInput("a class description must be one line")
    schema = check_schema(load_json_file(schema_file, "schema"), schema_file) \
        if schema_file is not None else None
    rules = _checked_rules(rules_file) if rules_file is not None else None
    visualisation = load_visualisation(visualisation_file) \
        if visualisation_file is not None else None
    if description is None and schema_file is None and rules_file is None \
            and visualisation_file is None:
        raise BadInput("nothing to change",
                       "pass --description, --schema, --rules or --visualisation")
    transport, info = open_remote(config, remote)
    current = transport.get_class(info.project, name)
    stored = transport.put_class(
        info.project, name,
        current.get("description") or "" if description is None else description,
        current.get("schema") if schema_file is None else schema,
        current.get("rules") if rules_file is None else rules,
        current.get("visualisation") if visualisation_file is None else visualisation)
    cls = AssetClass.from_json(stored)
    LocalClasses(project_dir(config.home, info.name, info.project) / "classes").put(cls)
    return cls
