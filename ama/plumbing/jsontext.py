"""JSON text from users: the one parser of version metadata on the client and of request
bodies on the remote.

Python's own parser recurses once per level of nesting and keeps the last of two equal
keys, so unchecked input can crash a command (100,000 ``[``) or mean two different things
to two readers (``{"asset": 1, "asset": 2}``). This parser refuses both, and anything
nested deeper than :data:`MAX_DEPTH`, which leaves headroom for the code that walks a
document recursively afterwards (JSON Schema validation takes several frames per level).
"""

from __future__ import annotations

import json
import math
from typing import Any

from ama.plumbing.errors import BadInput

# A JSON object typed no further on purpose: what it may hold is open (a version's
# metadata, a class's JSON Schema or visualisation rules, an identity provider's discovery
# document and a token's claims, the API's own OpenAPI description), or it is a request's
# body, whose fields are checked one by one as they are read.
JSONObject = dict[str, Any]
Metadata = JSONObject  # a version's metadata: the user's keys and values
JSONSchema = JSONObject  # a class's JSON Schema, which its versions' metadata must satisfy

MAX_DEPTH = 64
# The largest integer accepted, either sign: what a database's BIGINT and orjson hold, so
# that a number read here can be stored and sent back without overflowing.
MAX_INT = 2**63 - 1
_CONTAINERS = (dict, list)


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _object(pairs: list[tuple[str, Any]]) -> JSONObject:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


class _BadNumber(ValueError):
    pass


def _int(text: str) -> int:
    value = int(text)
    if not -MAX_INT <= value <= MAX_INT:
        raise _BadNumber(f"the integer {text[:30]}{'...' if len(text) > 30 else ''} is out "
                         f"of range (at most {MAX_INT} in size)")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadNumber(f"the number {text[:30]} is out of range")
    return value


def _constant(name: str) -> Any:
    raise _BadNumber(f"{name} is not a JSON number")


def depth(value: Any, limit: int | None = None) -> int:
    """Return how deeply ``value`` nests lists and dicts (0 for a scalar), or ``limit`` + 1
    as soon as it is known to be deeper; level by level, without recursing (a request of
    100,000 objects takes 30 ms)."""
    level = [value] if type(value) in _CONTAINERS else []
    levels = 0
    while level and (limit is None or levels <= limit):
        levels += 1
        below: list[Any] = []
        for node in level:
            below += [child for child in (node.values() if type(node) is dict else node)
                      if type(child) in _CONTAINERS]
        level = below
    return levels


def parse_json(text: str | bytes, what: str, max_bytes: int | None = None) -> Any:
    """Return the JSON value of ``text``; raise :class:`BadInput` naming ``what`` when it is
    not JSON, longer than ``max_bytes``, has an object with a key given twice, an integer
    beyond :data:`MAX_INT`, a number beyond a float, a NaN or an Infinity, or nests
    deeper than :data:`MAX_DEPTH`."""
    if max_bytes is not None and len(text) > max_bytes:
        raise BadInput(f"{what} is {len(text)} bytes, over the limit of {max_bytes}")
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_int=_int,
                           parse_float=_float, parse_constant=_constant)
    except _DuplicateKey as e:
        raise BadInput(f"{what} gives the key {e.key!r} twice in one object") from None
    except _BadNumber as e:
        raise BadInput(f"{what}: {e}") from None
    except RecursionError:
        raise BadInput(f"{what} nests deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:  # UnicodeDecodeError is one
        raise BadInput(f"{what} is not JSON: {e}") from None
    if depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise BadInput(f"{what} nests deeper than {MAX_DEPTH} levels")
    return value
