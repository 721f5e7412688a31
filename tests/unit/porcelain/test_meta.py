from __future__ import annotations

import pytest

from ama.plumbing.errors import BadInput, NotFound
from ama.porcelain.alias import add_alias, check_alias, remove_alias
from ama.porcelain.config import Config
from ama.porcelain.info import Remote, connect, parse_name
from ama.porcelain.meta import set_meta
from tests.unit.porcelain.published import publish


@pytest.fixture
def remote() -> Remote:
    remote = connect(Config.open())
    remote.transport.put_class(remote.project, "ml-models")
    publish(remote.transport, remote.project, "ml-models", {"a": b"a"})
    publish(remote.transport, remote.project, "ml-models", {"b": b"b"})
    return remote


def test_set_title_description_and_tags(remote: Remote) -> None:
    one = parse_name("ml-models/1")
    record = set_meta(remote, one, title=" Model ", description="d", tags=["b", "a", "b"])
    assert (record["title"], record["description"], record["tags"]) == ("Model", "d", ["a", "b"])
    assert set_meta(remote, one, add_tags=["c"], remove_tags=["a"])["tags"] == ["b", "c"]
    assert set_meta(remote, one, tags=[])["tags"] == []
    assert remote.transport.asset(remote.project, "ml-models", "1")["title"] == "Model"


@pytest.mark.parametrize("kwargs, problem", [
    ({}, "nothing to change"),
    ({"title": "a\nb"}, "one line"),
    ({"title": "x" * 201}, "at most 200"),
    ({"tags": [""]}, "invalid tag"),
    ({"tags": ["a,b"]}, "invalid tag"),
    ({"tags": ["a"], "add_tags": ["b"]}, "cannot be combined"),
])
def test_bad_changes_are_refused_before_the_remote(remote: Remote, kwargs: dict[str, object],
                                                   problem: str) -> None:
    with pytest.raises(BadInput, match=problem):
        set_meta(remote, parse_name("ml-models/1"), **kwargs)  # type: ignore[arg-type]
    assert remote.transport.asset(remote.project, "ml-models", "1")["tags"] == []


@pytest.mark.parametrize("alias", ["1", "007", "temp_x", "Prod", "-x", "a" * 64, "a/b"])
def test_check_alias_refuses(alias: str) -> None:
    with pytest.raises(BadInput, match="invalid alias"):
        check_alias(alias)


def test_aliases_move_and_are_removed_only_from_their_asset(remote: Remote) -> None:
    assert add_alias(remote, parse_name("ml-models/1"), "prod")["moved_from"] is None
    moved = add_alias(remote, parse_name("ml-models/2"), "prod")
    assert (moved["name"], moved["moved_from"]) == ("ml-models/2", "ml-models/1")
    with pytest.raises(NotFound, match="names ml-models/2, not ml-models/1"):
        remove_alias(remote, parse_name("ml-models/1"), "prod")
    assert remove_alias(remote, parse_name("ml-models/prod"), "prod")["name"] == "ml-models/2"
    with pytest.raises(NotFound, match="alias ml-models/prod not found"):
        remove_alias(remote, parse_name("ml-models/2"), "prod")
