"""The negotiation answer is built and read in one module: its compact form (negotiation
format 1) says exactly what the full one says."""

from __future__ import annotations

from typing import Any

import pytest

from ama.plumbing import wire

A, B, C, D, E = (c * 64 for c in "abcde")


def _build(compact: bool, operation: str) -> dict[str, Any]:
    answer = wire.Negotiating(operation, compact, "/v1/projects/p/objects/{id}", 3600)
    answer.error("nonsense", 400, "'nonsense' is not an object id")
    answer.held(A, 1)
    answer.through_server(B, 2)
    answer.presigned(C, 3, {operation: {"href": "https://storage/c", "method": "PUT",
                                        "headers": {"x": "y"}, "expires": 60}})
    answer.in_pack(D, 4, E, 100, 4)
    return answer.answer({E: {"size": 200}})


@pytest.mark.parametrize("operation", ["upload", "download"])
def test_the_compact_answer_expands_to_the_full_one(operation: str) -> None:
    asked = [{"id": oid} for oid in ("nonsense", A, B, C, D)]
    full = _build(False, operation)
    compact = _build(True, operation)
    assert compact["compact"] == 1 and len(compact["objects"]) == 2  # the error, the URL
    assert wire.expand(compact, operation, asked) == full
    assert [item["id"] for item in full["objects"]] == ["nonsense", A, B, C, D]
    assert full["objects"][2]["actions"][operation]["href"] == f"/v1/projects/p/objects/{B}"


def test_an_object_left_out_of_the_answer_is_named() -> None:
    with pytest.raises(KeyError, match="f" * 64):
        wire.expand(_build(True, "upload"), "upload", [{"id": A}, {"id": "f" * 64}])
