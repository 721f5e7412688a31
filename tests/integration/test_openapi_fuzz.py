"""The bad-input suite: schemathesis drives every operation of the OpenAPI document the
server publishes (``GET /v1/openapi.json``) with generated and mutated requests, as the
admin of a project that has a class and an asset, and no answer may be a 500. The document
itself is held to the app's routes and to ama-protocol(7), so that none of the three
describes a route the others lack."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import falcon
import falcon.inspect
import falcon.testing
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from ama_remote.openapi import DOCUMENT
from tests.integration.test_http_api import Api, make_api, make_class, objects_of_one_file, upload

METHODS = ("get", "put", "post", "patch", "delete")
ROOT = Path(__file__).resolve().parents[2]
# Per operation, half well-formed and half not: enough to reach each parser with nonsense
# of every JSON type, and the whole suite within about a minute on two cores.
MAX_EXAMPLES = 100


def _shape(path: str) -> str:
    """A route with its parameters unnamed: /v1/projects/{project} -> /v1/projects/{}."""
    return re.sub(r"\{[^}]*\}", "{}", path)


def _app_routes(app: falcon.App) -> set[tuple[str, str]]:
    """The API's routes the app serves: those under /v1/ (every other path is a page of the
    web dashboard, described in docs/dashboard.md)."""
    routes = set()
    for route in falcon.inspect.inspect_routes(app):
        if not route.path.startswith("/v1/"):
            continue
        for method in route.methods:
            if method.internal or method.method.lower() not in METHODS:
                continue
            routes.add((method.method.lower(), _shape(route.path)))
    return routes


def _document_routes() -> set[tuple[str, str]]:
    return {(method, _shape(path)) for path, item in DOCUMENT["paths"].items()
            for method in item if method in METHODS}


def _man_routes() -> set[tuple[str, str]]:
    """The routes ama-protocol(7) documents: each ``.TP`` or ``.TQ`` entry that starts with
    a method, its italic placeholders read as parameters and its query string dropped."""
    text = (ROOT / "man" / "ama-protocol.7").read_text(encoding="utf-8")
    routes = set()
    lines = text.splitlines()
    for before, line in zip(lines, lines[1:], strict=False):
        if before not in (".TP", ".TQ") \
                or not re.match(r"\\fB(GET|PUT|POST|PATCH|DELETE) /v1/", line):
            continue
        route = re.sub(r"\\fI[^\\]+\\fR", "{}", line)  # an italic placeholder
        route = re.sub(r"\\f[BRI]|\\:", "", route)
        method, path = route.split()[:2]
        routes.add((method.lower(), path.split("?")[0]))
    return routes


def test_the_document_describes_every_route_the_app_serves(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    assert _document_routes() == _app_routes(api.client.app)


def test_ama_protocol_7_documents_every_route_of_the_document() -> None:
    assert _man_routes() == _document_routes()


def test_the_document_is_served_without_a_token(tmp_path: Path) -> None:
    api = make_api(tmp_path)
    result = api.call("GET", "/v1/openapi.json", user=None)
    assert result.status_code == 200
    assert result.json == DOCUMENT


@pytest.fixture
def fuzzed_api(tmp_path: Path) -> Api:
    """The app, with project demo, class models and asset models/1."""
    api = make_api(tmp_path)
    make_class(api)
    objects, manifest = objects_of_one_file(b"hello\n")
    upload(api, objects)
    done = api.call("POST", "/v1/projects/demo/classes/models/versions", "wendy", json={
        "asset": None, "parent": None, "manifest": manifest, "idempotency_key": "k"})
    assert done.status_code == 201, done.text
    return api


@pytest.mark.parametrize(("method", "path"), [
    (method, path) for path, item in DOCUMENT["paths"].items() for method in item])
def test_no_input_makes_a_server_error(fuzzed_api: Api, method: str, path: str) -> None:
    operation = schemathesis.openapi.from_wsgi(
        "/v1/openapi.json", fuzzed_api.client.app)[path][method.upper()]
    token = fuzzed_api.tokens["admin"]

    @given(case=st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE)))
    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def fuzz(case: Any) -> None:
        # Most requests aim at the project and class that exist, so that they get past
        # the lookups into the code that parses the rest.
        params = case.path_parameters or {}
        if "project" in params:
            params["project"] = "demo"
        if "cls" in params:
            params["cls"] = "models"
        case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                               checks=[not_a_server_error])

    fuzz()
