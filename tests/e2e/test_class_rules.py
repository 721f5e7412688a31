"""``ama class init|update --visualisation|--rules`` and the rules on an asset's tags, title
and description, through the installed ``ama``, against the embedded remote and against
ama-server under gunicorn (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ama.plumbing.transport import HttpTransport, Transport
from tests.e2e.test_lifecycle import ama, prepare
from tests.services.server import RunningServer
from tests.unit.porcelain.published import publish


def _scenario(tmp_path: Path, env: dict[str, str], transport: Transport, project: str) -> None:
    (tmp_path / "viewers.yaml").write_text("'*.csv': table\nplots/*.png:\n  viewer: image\n"
                                           "  options: {width: 300}\n")
    made = json.loads(ama("class", "init", "ml-models", "--visualisation", "viewers.yaml",
                          "--json", cwd=tmp_path, env=env).stdout)
    rules = {"*.csv": "table", "plots/*.png": {"viewer": "image", "options": {"width": 300}}}
    assert made["visualisation"] == rules
    assert transport.get_class(project, "ml-models")["visualisation"] == rules
    # Checked before the remote is asked: a viewer ama does not know, a key twice.
    (tmp_path / "bad.json").write_text('{"*.csv": "spreadsheet"}')
    bad = ama("class", "update", "ml-models", "--visualisation", "bad.json", cwd=tmp_path,
              env=env, code=2)
    assert "visualisation file bad.json" in bad.stderr and "'spreadsheet'" in bad.stderr
    (tmp_path / "twice.yaml").write_text("'*.csv': table\n'*.csv': image\n")
    twice = ama("class", "update", "ml-models", "--visualisation", "twice.yaml", cwd=tmp_path,
                env=env, code=2)
    assert "'*.csv' is given twice" in twice.stderr

    (tmp_path / "rules.json").write_text(json.dumps(
        {"max_tags": 2, "tag_pattern": "[a-z]+", "max_title_length": 12}))
    ama("class", "update", "ml-models", "--rules", "rules.json", cwd=tmp_path, env=env)
    shown = json.loads(ama("class", "info", "ml-models", "--json", cwd=tmp_path, env=env).stdout)
    assert shown["rules"]["max_tags"] == 2 and shown["visualisation"] == rules
    assert "Updated class ml-models" in ama("class", "update", "ml-models", "--description",
                                            "Models", cwd=tmp_path, env=env).stdout
    assert transport.get_class(project, "ml-models")["rules"]["tag_pattern"] == "[a-z]+"

    publish(transport, project, "ml-models", {"w": b"w"})
    refused = ama("asset", "set", "--asset", "ml-models/1", "--tag", "a", "--tag", "b",
                  "--tag", "c", "--title", "far too long a title", cwd=tmp_path, env=env,
                  code=1)
    assert "max_tags: 3 tags, over 2" in refused.stderr
    assert "max_title_length: 20 characters, over 12" in refused.stderr
    refused = ama("asset", "set", "--asset", "ml-models/1", "--tag", "Prod", cwd=tmp_path,
                  env=env, code=1)
    assert "tag_pattern: tag 'Prod' does not match '[a-z]+'" in refused.stderr
    ama("asset", "set", "--asset", "ml-models/1", "--tag", "prod", "--title", "ResNet",
        cwd=tmp_path, env=env)


def test_class_rules_on_the_embedded_remote(tmp_path: Path) -> None:
    from ama.porcelain.config import Config
    from ama.porcelain.remotes import open_remote

    transport, _ = open_remote(Config.open())
    _scenario(tmp_path, {}, transport, "default")


def test_class_rules_against_ama_server(tmp_path: Path,
                                        start_ama_server: Callable[..., RunningServer],
                                        server_database_url: str) -> None:
    server = start_ama_server(server_database_url)
    env = {"AMA_TOKEN": server.token, "AMA_PROJECT": server.project}
    prepare("remote", "add", "team", server.url, cwd=tmp_path, env=env)
    prepare("remote", "default", "team", cwd=tmp_path, env=env)
    _scenario(tmp_path, env, HttpTransport(server.url, token=server.token), server.project)
