"""Class rules: the checks a version must pass to be uploaded to a class (docs/design.md §1).

The remote runs them in its commit and the client runs them before it transfers anything,
so a version that breaks a rule is refused early and both sides say the same thing. Rules,
every key optional::

    {"required_files": ["README.md", "*.onnx"],   # gitignore-style; each must match a file
     "forbidden_files": ["*.tmp", "secrets/"],    # no file may match any of these
     "max_total_size": 10000000000,               # bytes, all files together
     "max_file_size": 2000000000,                 # bytes, any one file
     "max_file_count": 100000}

and a class's ``schema`` is a JSON Schema the manifest's ``metadata`` must satisfy.

Schemas and patterns come from users and run on the remote, so both sides hold them to what
runs in bounded time and touches nothing else: a ``$ref`` resolves only inside the schema
(a remote one would make the server fetch any address it is given), a ``$ref`` may not lead
back to where it started without descending into the instance (validation would never end),
and every ``pattern`` and ``patternProperties`` regex runs on RE2, whose matching time is
linear in the input (Python's ``re`` backtracks: ``(a+)+$`` against forty ``a`` and a ``!``
takes seconds, and a few more letters take hours). A pattern RE2 cannot compile
(backreferences, lookaround) is refused when the class is created.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

from ama.plumbing.errors import BadInput
from ama.plumbing.jsontext import MAX_DEPTH, JSONSchema, Metadata, depth

RULE_KEYS = ("required_files", "forbidden_files", "max_total_size", "max_file_size",
             "max_file_count", "max_tags", "tag_pattern", "max_title_length",
             "max_description_length")
# The rules on an asset's title, description and tags (checked when they change), beside
# the rules on a version's files (checked at each commit).
ASSET_RULE_KEYS = ("max_tags", "tag_pattern", "max_title_length", "max_description_length")
VIEWERS = ("table", "image", "text", "json", "markdown", "pdf", "audio", "video", "html",
           "none")
MAX_VISUALISATION_RULES = 1000
MAX_LISTED = 20
MAX_SCHEMA_NODES = 10_000
# Keywords one metadata check may evaluate: a small schema can still ask for an exponential
# number (two $ref to a subschema of two $ref to ... apply the leaf 2**depth times), which
# no static bound on the schema's size catches; a real schema on real metadata is far below.
MAX_SCHEMA_STEPS = 200_000

# Keywords whose subschemas apply to the instance itself, not to a part of it: a cycle
# through these alone is endless recursion.
_IN_PLACE = ("allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentSchemas",
             "dependencies", "$ref", "$dynamicRef", "$recursiveRef", "extends")
# Keywords whose subschemas apply to a member or an item of the instance.
_DESCENDING = ("properties", "patternProperties", "additionalProperties", "items",
               "prefixItems", "additionalItems", "contains", "propertyNames",
               "unevaluatedItems", "unevaluatedProperties")


def check_rules(rules: Any) -> None:
    """Raise :class:`BadInput` unless ``rules`` is None or valid class rules."""
    import pathspec

    if rules is None:
        return
    if not isinstance(rules, dict):
        raise BadInput("class rules must be a JSON object")
    unknown = sorted(set(rules) - set(RULE_KEYS))
    if unknown:
        raise BadInput(f"unknown class rule(s) {', '.join(unknown)}: "
                       f"the rules are {', '.join(RULE_KEYS)}")
    for key in ("required_files", "forbidden_files"):
        value = rules.get(key, [])
        if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value):
            raise BadInput(f"rule {key} must be a list of gitignore-style patterns")
        try:
            pathspec.GitIgnoreSpec.from_lines(value, backend="re2")
        except Exception as e:  # pathspec raises several types for a bad pattern
            raise BadInput(f"rule {key}: invalid pattern: {e}") from e
    pattern = rules.get("tag_pattern")
    if pattern is not None:
        if not isinstance(pattern, str) or not pattern:
            raise BadInput("rule tag_pattern must be a regular expression, as a string")
        try:
            _regex(pattern)
        except BadInput as e:
            raise BadInput(f"rule tag_pattern: {e.message}", e.hint) from None
    for key in ("max_total_size", "max_file_size", "max_file_count", "max_tags",
                "max_title_length", "max_description_length"):
        value = rules.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise BadInput(f"rule {key} must be a non-negative integer")


def asset_rule_problems(rules: dict[str, Any] | None, title: str | None,
                        description: str | None, tags: Sequence[str] | None) -> list[str]:
    """One line per asset rule (ASSET_RULE_KEYS) that ``title``, ``description`` or
    ``tags`` break (each None: not being changed); empty when they pass."""
    rules = rules or {}
    problems: list[str] = []
    if tags is not None:
        limit = rules.get("max_tags")
        if limit is not None and len(tags) > limit:
            problems.append(f"max_tags: {len(tags)} tags, over {limit}")
        pattern = rules.get("tag_pattern")
        if pattern is not None:
            problems += [f"tag_pattern: tag {t!r} does not match {pattern!r}"
                         for t in tags if _regex(pattern).fullmatch(t) is None][:MAX_LISTED]
    for key, value in (("max_title_length", title), ("max_description_length", description)):
        limit = rules.get(key)
        if value is not None and limit is not None and len(value) > limit:
            problems.append(f"{key}: {len(value)} characters, over {limit}")
    return problems


def check_visualisation(rules: Any) -> None:
    """Raise :class:`BadInput` unless ``rules`` is None or valid visualisation rules: an
    object mapping gitignore-style patterns to a viewer (one of VIEWERS), or to
    ``{"viewer": VIEWER, "options": {...}}``."""
    import pathspec

    if rules is None:
        return
    if not isinstance(rules, dict):
        raise BadInput("visualisation rules must be a JSON object of pattern → viewer",
                       'for example {"*.csv": "table", "images/*.png": "image"}')
    if len(rules) > MAX_VISUALISATION_RULES:
        raise BadInput(f"{len(rules)} visualisation rules: at most "
                       f"{MAX_VISUALISATION_RULES} are allowed")
    for pattern, rule in rules.items():
        try:
            pathspec.GitIgnoreSpec.from_lines([pattern], backend="re2")
        except Exception as e:  # pathspec raises several types for a bad pattern
            raise BadInput(f"visualisation: invalid pattern {pattern!r}: {e}") from e
        viewer = rule.get("viewer") if isinstance(rule, dict) else rule
        if isinstance(rule, dict) and (set(rule) - {"viewer", "options"}
                                       or not isinstance(rule.get("options", {}), dict)):
            raise BadInput(f"visualisation: the rule for {pattern!r} may hold only "
                           '"viewer" and "options" (an object)')
        if viewer not in VIEWERS:
            raise BadInput(f"visualisation: the viewer for {pattern!r} is {viewer!r}: use "
                           f"one of {', '.join(VIEWERS)}")


# How a page (the dashboard's version page, ``ama report``) shows a file of each viewer: the
# viewers of documents read as text; the others are listed, not previewed.
PREVIEWS = {"image": "image", "table": "table", "text": "text", "json": "text",
            "markdown": "text"}
TABLE_ROWS = 20
MAX_TABLE_ROWS = 200


def preview_rules(rules: Any) -> list[tuple[Any, str, int]]:
    """Return ``(compiled pattern, preview, rows)`` for each rule of a class's visualisation
    rules (see :func:`check_visualisation`) that a page can preview, in order: a file takes
    the first whose pattern matches. ``preview`` is a value of :data:`PREVIEWS`; ``rows`` is
    the rule's ``options.rows`` for a table, :data:`TABLE_ROWS` unless said. Rules stored
    before the server checked them are read as leniently: a malformed one previews nothing."""
    import pathspec

    if not isinstance(rules, dict):
        return []
    found = []
    for pattern, rule in rules.items():
        viewer = rule.get("viewer") if isinstance(rule, dict) else rule
        options = rule.get("options") if isinstance(rule, dict) else None
        rows = options.get("rows") if isinstance(options, dict) else None
        if not isinstance(pattern, str) or viewer not in PREVIEWS:
            continue
        try:
            spec = pathspec.GitIgnoreSpec.from_lines([pattern], backend="re2")
        except Exception:  # pathspec raises several types for a bad pattern
            continue
        if not isinstance(rows, int) or isinstance(rows, bool) or not 0 < rows <= MAX_TABLE_ROWS:
            rows = TABLE_ROWS
        found.append((spec, PREVIEWS[viewer], rows))
    return found


@functools.lru_cache(maxsize=256)  # a pattern is matched against every key and string
def _regex(pattern: str) -> Any:
    """Return ``pattern`` compiled by RE2; raise :class:`BadInput` naming it if RE2 cannot."""
    import re2

    options = re2.Options()
    options.log_errors = False  # the BadInput says it; RE2's own log would go to stderr
    try:
        return re2.compile(pattern, options=options)
    except UnicodeEncodeError:  # JSON's "\ud800" is no character: UTF-8 has none for RE2
        raise BadInput(f"class schema: pattern {pattern!r} is not supported: it holds a "
                       "lone surrogate, which is no character") from None
    except re2.error as e:
        reason = e.args[0].decode() if e.args and isinstance(e.args[0], bytes) else str(e)
        raise BadInput(f"class schema: pattern {pattern!r} is not supported: {reason}",
                       "patterns run on RE2: no backreferences or lookaround") from None


def _search(pattern: str, text: str) -> bool:
    # A lone surrogate in the text (JSON's "\ud800") is no character; RE2 reads UTF-8, so
    # it is read as U+FFFD, as a UTF-8 decoder reads it.
    if not text.isascii():
        text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return _regex(pattern).search(text) is not None


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        schema: Any) -> Any:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, additional: Any, instance: Any,
                           schema: Any) -> Any:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [key for key in instance if key not in properties
              and not any(_search(p, key) for p in patterns)]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        joined = ", ".join(repr(each) for each in sorted(extras))
        yield ValidationError(f"additional properties are not allowed ({joined} unexpected)")


def _registry() -> Any:
    """Return the registry schemas resolve ``$ref`` in: the JSON Schema meta-schemas, and
    nothing fetched (jsonschema's default would download any URL a schema names)."""
    from jsonschema_specifications import REGISTRY
    from referencing import Registry
    from referencing.exceptions import NoSuchResource

    def refuse(uri: str) -> Any:
        raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # an attrs alias mypy misses

    return REGISTRY.combine(Registry(retrieve=refuse))  # type: ignore[call-arg]


class _TooLong(Exception):
    """A metadata check ran out of its :data:`MAX_SCHEMA_STEPS`."""


def _metered(keyword: Any, budget: list[int]) -> Any:
    def metered(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLong
        return keyword(validator, value, instance, schema)

    return metered


def _validator_class(schema: JSONSchema, budget: list[int] | None = None) -> Any:
    """The validator of ``schema`` with patterns on RE2; each keyword it evaluates spends
    one of ``budget``, and :class:`_TooLong` ends a check that spent them all."""
    import jsonschema

    base = jsonschema.validators.validator_for(schema)
    keywords = {**base.VALIDATORS, "pattern": _pattern,
                "patternProperties": _pattern_properties,
                "additionalProperties": _additional_properties}
    if budget is not None:
        keywords = {key: _metered(check, budget) for key, check in keywords.items()}
    return jsonschema.validators.extend(base, keywords)


def check_schema(schema: Any) -> JSONSchema | None:
    """Return ``schema`` if it is None or a JSON Schema object this project can run; raise
    :class:`BadInput` naming the problem: not a JSON Schema, a ``$ref`` that leaves the
    schema or cannot be found, a ``$ref`` cycle, a pattern RE2 cannot compile, or more than
    :data:`MAX_SCHEMA_NODES` subschemas."""
    import jsonschema
    from referencing import Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import specification_with

    if schema is None:
        return None
    if not isinstance(schema, dict):
        raise BadInput("a class schema must be a JSON Schema object")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as e:
        raise BadInput(f"class schema is not a valid JSON Schema: {e.message}",
                       "see https://json-schema.org for the format") from None
    validator_class = _validator_class(schema)
    # Draft 4 and older name a schema by "id", later drafts by "$id".
    spec = specification_with(validator_class.ID_OF(validator_class.META_SCHEMA))

    def resource(contents: Any) -> Any:
        return Resource.from_contents(contents, default_specification=spec)

    # Walk every subschema reachable from the root, $ref followed; remember which ones apply
    # in place, so that a cycle among those is found before any instance meets it.
    nodes: dict[int, Any] = {id(schema): schema}
    in_place: dict[int, list[int]] = {}
    todo = [(schema, _registry().resolver_with_root(resource(schema)))]
    uses: set[str] = set()
    while todo:
        node, resolver = todo.pop()
        if not isinstance(node, dict):
            continue
        if node is not schema and ("$id" in node or "id" in node):
            resolver = resolver.in_subresource(resource(node))
        here = in_place.setdefault(id(node), [])
        uses.update(k for k in ("patternProperties", "unevaluatedProperties") if k in node)
        children: list[tuple[bool, Any, Any]] = []
        for key in _IN_PLACE + _DESCENDING:
            value = node.get(key)
            if key in ("$ref", "$dynamicRef", "$recursiveRef"):
                if not isinstance(value, str):
                    continue
                try:
                    found = resolver.lookup(value)
                except Unresolvable as e:
                    raise BadInput(f"class schema: {key} {value!r} cannot be resolved ({e}); "
                                   "a class schema refers only to its own parts") from None
                children.append((True, found.contents, found.resolver))
            elif isinstance(value, dict) and key in ("properties", "patternProperties",
                                                     "dependentSchemas", "dependencies"):
                children += [(key != "properties" and key != "patternProperties", v, resolver)
                             for v in value.values()]
            elif isinstance(value, list):
                children += [(key in _IN_PLACE, v, resolver) for v in value]
            elif value is not None:
                children.append((key in _IN_PLACE, value, resolver))
        for pattern in ([node["pattern"]] if isinstance(node.get("pattern"), str) else []) \
                + list(node.get("patternProperties") or {}):
            _regex(pattern)
        for applies_here, child, child_resolver in children:
            if not isinstance(child, dict):
                continue
            if applies_here:
                here.append(id(child))
            if id(child) not in nodes:
                nodes[id(child)] = child
                if len(nodes) > MAX_SCHEMA_NODES:
                    raise BadInput(f"class schema has more than {MAX_SCHEMA_NODES} subschemas")
                todo.append((child, child_resolver))
    if uses == {"patternProperties", "unevaluatedProperties"}:
        raise BadInput("class schema: unevaluatedProperties cannot be used with "
                       "patternProperties here (their patterns would not run on RE2)")
    cycle = _cycle(in_place)
    if cycle is not None:
        raise BadInput("class schema refers to itself without end: a $ref leads back to "
                       f"a schema it started from ({_where(schema, nodes[cycle])}) without "
                       "descending into a property or item")
    return schema


def _cycle(edges: dict[int, list[int]]) -> int | None:
    """Return a node on a cycle of ``edges``, or None (iteratively: schemas may be deep)."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if start in state:
            continue
        stack = [(start, iter(edges.get(start, ())))]
        state[start] = 1
        while stack:
            node, rest = stack[-1]
            for child in rest:
                if state.get(child) == 1:
                    return child
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(edges.get(child, ()))))
                    break
            else:
                state[node] = 2
                stack.pop()
    return None


def _where(root: Any, target: Any) -> str:
    """Return the JSON pointer of ``target`` inside ``root`` ("#" for the root)."""
    todo: list[tuple[Any, str]] = [(root, "#")]
    while todo:
        node, path = todo.pop()
        if node is target:
            return path
        if isinstance(node, dict):
            todo += [(v, f"{path}/{k}") for k, v in node.items()]
        elif isinstance(node, list):
            todo += [(v, f"{path}/{n}") for n, v in enumerate(node)]
    return "#"


def rule_problems(schema: JSONSchema | None, rules: dict[str, Any] | None,
                  metadata: Metadata, files: Sequence[tuple[str, str, int]]) -> list[str]:
    """Return one line per broken rule (empty when the version passes them all).

    ``files`` are ``(path, blob id, size)`` of every file of the version.
    """
    import pathspec

    problems: list[str] = []
    if schema:
        # A class made before schemas were checked this strictly is checked again here: a
        # version is refused with the reason rather than validated by a schema that fetches
        # or never ends.
        try:
            check_schema(schema)
        except BadInput as e:
            return [f"schema: {e.message}"]
        if depth(metadata, MAX_DEPTH) > MAX_DEPTH:  # a manifest is not parsed by parse_json
            return [f"schema: metadata nests deeper than {MAX_DEPTH} levels"]
        validator = _validator_class(schema, [MAX_SCHEMA_STEPS])(schema, registry=_registry())
        try:
            # The first few say what is wrong; all of them could each repeat a large instance.
            errors = sorted(itertools.islice(validator.iter_errors(metadata), MAX_LISTED),
                            key=lambda e: list(e.path))
        except _TooLong:
            return [f"schema: checking the metadata takes more than {MAX_SCHEMA_STEPS} "
                    "steps; the class schema applies its parts too many times"]
        for error in errors:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"schema: metadata {where}: {error.message}")
    rules = rules or {}
    paths = [path for path, _, _ in files]
    for pattern in rules.get("required_files", []):
        if not any(pathspec.GitIgnoreSpec.from_lines([pattern], backend="re2").match_files(paths)):
            problems.append(f"required_files: no file matches {pattern!r}")
    for pattern in rules.get("forbidden_files", []):
        hits = list(pathspec.GitIgnoreSpec.from_lines([pattern], backend="re2").match_files(paths))
        problems += [f"forbidden_files: {path} matches {pattern!r}" for path in hits[:MAX_LISTED]]
    total = sum(size for _, _, size in files)
    limit = rules.get("max_total_size")
    if limit is not None and total > limit:
        problems.append(f"max_total_size: the files total {total} bytes, over {limit}")
    limit = rules.get("max_file_size")
    if limit is not None:
        big = [(path, size) for path, _, size in files if size > limit]
        problems += [f"max_file_size: {path} is {size} bytes, over {limit}"
                     for path, size in big[:MAX_LISTED]]
    limit = rules.get("max_file_count")
    if limit is not None and len(files) > limit:
        problems.append(f"max_file_count: {len(files)} files, over {limit}")
    return problems
