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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ama.plumbing.errors import BadInput

RULE_KEYS = ("required_files", "forbidden_files", "max_total_size", "max_file_size",
             "max_file_count")
MAX_LISTED = 20


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
            pathspec.GitIgnoreSpec.from_lines(value)
        except Exception as e:  # pathspec raises several types for a bad pattern
            raise BadInput(f"rule {key}: invalid pattern: {e}") from e
    for key in ("max_total_size", "max_file_size", "max_file_count"):
        value = rules.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)
                                  or value < 0):
            raise BadInput(f"rule {key} must be a non-negative integer")


def rule_problems(schema: dict[str, Any] | None, rules: dict[str, Any] | None,
                  metadata: dict[str, Any], files: Sequence[tuple[str, str, int]]) -> list[str]:
    """Return one line per broken rule (empty when the version passes them all).

    ``files`` are ``(path, blob id, size)`` of every file of the version.
    """
    import pathspec

    problems: list[str] = []
    if schema:
        import jsonschema

        validator = jsonschema.validators.validator_for(schema)(schema)
        for error in sorted(validator.iter_errors(metadata), key=lambda e: list(e.path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            problems.append(f"schema: metadata {where}: {error.message}")
    rules = rules or {}
    paths = [path for path, _, _ in files]
    for pattern in rules.get("required_files", []):
        if not any(pathspec.GitIgnoreSpec.from_lines([pattern]).match_files(paths)):
            problems.append(f"required_files: no file matches {pattern!r}")
    for pattern in rules.get("forbidden_files", []):
        hits = list(pathspec.GitIgnoreSpec.from_lines([pattern]).match_files(paths))
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
