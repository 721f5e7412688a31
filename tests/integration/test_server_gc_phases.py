"""``ama-server gc``'s look, mark and sweep run as separate steps between an upload's
negotiation and its commit, on SQLite and PostgreSQL and on a folder and S3: the orders
that open a race with an upload, made to happen every time instead of now and then."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from ama.plumbing.errors import ValidationFailed
from ama.plumbing.transport import HttpTransport
from ama_remote.service import Service
from tests.integration.test_gunicorn import write_version
from tests.integration.test_server_gc import check_cloneable, pack_stored, push_packed
from tests.services.server import RunningServer

NO_GRACE = timedelta(0)


def test_a_commit_after_gc_swept_the_pack_its_upload_found_objects_in_is_refused_then_made(
        phased_server: RunningServer, collector: Service, tmp_path: Path) -> None:
    server = phased_server
    client = HttpTransport(server.url, server.token)
    client.put_class(server.project, "models")
    paths, manifest = write_version(tmp_path, {"small.txt": b"a small file\n" * 10})
    # An earlier upload, cut off before its commit, left every object in one pack.
    first = push_packed(client, server.project, paths, tmp_path / "packs")
    assert first is not None
    # This upload's negotiation finds them all present: it sends nothing.
    assert push_packed(client, server.project, paths, tmp_path / "packs") is None

    [group] = collector.look(NO_GRACE)
    assert set(group.packs) == {first}
    marked = collector.mark(group, NO_GRACE)
    assert list(marked.packs) == [first]
    assert collector.sweep(group, marked)[2] == 1
    assert not pack_stored(server, first)

    with pytest.raises(ValidationFailed, match="missing") as refused:
        client.commit(server.project, "models", None, None, manifest, "after-gc")
    # Two guards refuse it, each alone enough: the mark forgot the swept pack's objects
    # (the manifest is missing, what lies below is not read), and the commit's re-check
    # finds their bytes gone (every object is named). The test fails only without both.
    assert any(manifest in problem for problem in refused.value.problems)
    # The upload run again is asked for every object, sends them in the same pack, and
    # the commit checks they are back before it lifts gc's marks.
    assert push_packed(client, server.project, paths, tmp_path / "packs") == first
    assert pack_stored(server, first)
    version = client.commit(server.project, "models", None, None, manifest, "again")
    assert version["version"] == "0.0.0"
    check_cloneable(client, server.project, [paths], tmp_path)
    assert server.invoke("fsck").returncode == 0
    # The version keeps them: gc finds nothing to free.
    [group] = collector.look(NO_GRACE)
    assert (group.candidates, group.packs) == ({}, {})
