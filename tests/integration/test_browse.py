"""The service's reads for the dashboard (filtered asset pages, version files and totals,
diffs) on SQLite and PostgreSQL: each database looks inside the JSON list of tags its own
way."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ama_remote.db import Database
from ama_remote.errors import BadInput, NotFound
from ama_remote.service import Caller, Service
from tests.integration.test_dashboard import CSV_0, CSV_1, XSS_NAME, commit, png, seed


@pytest.fixture
def seeded(server_database_url: str, tmp_path: Path) -> Iterator[tuple[Service, Caller, dict]]:
    db = Database(server_database_url)
    db.migrate()
    service = Service(db)
    service.create_project("demo", (tmp_path / "storage").as_uri())
    service.add_user("ada", "ada@example.org")
    service.grant("demo", "ada", "admin")
    admin = service.authenticate(service.issue_token("ada"))
    found = seed(service, admin, (tmp_path / "other").as_uri())
    yield service, admin, found
    db.dispose()


def names(listed: dict) -> list[str]:
    return [a["name"] for a in listed["items"]]


def test_assets_filter_by_tag_alias_owner_and_date_and_sort(seeded: tuple) -> None:
    service, admin, _ = seeded
    service.update_asset(admin, "demo", "tables", 2, title="Alpha", tags=["model", "birds"])
    browse = lambda **kw: service.browse_assets(admin, "demo", "tables", **kw)  # noqa: E731
    assert names(browse()) == ["tables/1", "tables/2"]
    assert names(browse(tag="model")) == ["tables/2"]
    assert names(browse(tag="birds")) == ["tables/1", "tables/2"]
    assert names(browse(tag="bird")) == []  # a whole tag, not a part of one
    assert names(browse(alias="her")) == ["tables/1"]
    assert names(browse(alias="%")) == []  # no wildcard
    assert names(browse(owner="ada")) == ["tables/1", "tables/2"]
    assert names(browse(owner="wanda")) == []
    today = service.get_asset(admin, "demo", "tables", 1)["created"][:10]
    assert names(browse(since=today, until=today)) == ["tables/1", "tables/2"]
    assert names(browse(until="2000-01-01")) == []
    assert names(browse(sort="title")) == ["tables/2", "tables/1"]  # "Alpha" < "Weights …"
    assert names(browse(sort="ordinal", descending=True)) == ["tables/2", "tables/1"]
    assert names(browse(sort="updated")) == ["tables/1", "tables/2"]
    first = browse(per_page=1)
    assert (names(first), first["total"], first["next_page"]) == (["tables/1"], 2, 2)
    last = browse(per_page=1, page=2)
    assert (names(last), last["next_page"]) == (["tables/2"], None)
    with pytest.raises(BadInput, match="sort"):
        browse(sort="size; drop table")
    with pytest.raises(BadInput, match="date"):
        browse(since="yesterday")


def test_an_outsider_cannot_browse_a_project(seeded: tuple) -> None:
    service, _, found = seeded
    otto = service.authenticate(found["tokens"]["otto"])
    with pytest.raises(NotFound, match="project 'demo' not found"):
        service.browse_assets(otto, "demo", "tables")
    with pytest.raises(NotFound, match="project 'demo' not found"):
        service.version_files(otto, "demo", "tables", 1, "0.0.0")
    with pytest.raises(NotFound, match="project 'demo' not found"):
        service.version_totals(otto, "demo", "tables", 1)
    with pytest.raises(NotFound, match="project 'demo' not found"):
        service.diff_versions(otto, "demo", "tables", 1, "0.0.0", "0.0.1")


def test_version_files_come_folder_by_folder_page_by_page_with_totals(seeded: tuple
                                                                      ) -> None:
    service, admin, _ = seeded
    page = service.version_files(admin, "demo", "tables", "herons", "0.0.0", per_page=2)
    assert [(e["name"], e["kind"]) for e in page["entries"]] == [(XSS_NAME, "blob"),
                                                                ("a.csv", "blob")]
    assert [f["path"] for f in page["files"]] == [XSS_NAME, "a.csv"]
    assert page["total_entries"] == 3 and page["folder"] == ""
    meta = len(b'{"source": "field"}')
    assert page["total_bytes"] == page["folder_bytes"] == len(png()) + len(CSV_0) + meta
    assert page["next_page"] == 2 and page["metadata"] == {"season": "spring"}
    rest = service.version_files(admin, "demo", "tables", 1, "0.0.0", page=2, per_page=2)
    assert [(e["path"], e["kind"], e["size"]) for e in rest["entries"]] == [
        ("notes", "tree", meta)]
    assert rest["files"] == [] and rest["next_page"] is None
    notes = service.version_files(admin, "demo", "tables", 1, "0.0.0", folder="notes/")
    assert [f["path"] for f in notes["files"]] == ["notes/meta.json"]
    assert (notes["folder"], notes["folder_bytes"], notes["total_entries"]) == ("notes", meta, 1)
    assert notes["total_bytes"] == page["total_bytes"]
    derived = service.version_files(admin, "demo", "tables", 2, "0.0.0")
    assert derived["inputs"][0]["name"] == "tables/1/0.0.1"
    with pytest.raises(NotFound, match="version 9.9.9"):
        service.version_files(admin, "demo", "tables", 1, "9.9.9")
    with pytest.raises(NotFound, match="no folder 'a.csv' in tables/1/0.0.0"):
        service.version_files(admin, "demo", "tables", 1, "0.0.0", folder="a.csv")
    with pytest.raises(NotFound, match="no folder 'notes/deeper'"):
        service.version_files(admin, "demo", "tables", 1, "0.0.0", folder="notes/deeper")


def test_version_totals_and_diffs(seeded: tuple) -> None:
    service, admin, _ = seeded
    commit(service, admin, "demo", "tables", {"d/e/f.txt": b"123", "d/g.txt": b"45", "h": b""},
           asset=1, parent=service.get_asset(admin, "demo", "tables", 1)["latest"]["manifest"])
    totals = service.version_totals(admin, "demo", "tables", 1)
    assert totals["0.0.1"] == {"files": 3, "bytes": len(CSV_1) + len(png()) + 11}
    assert totals["0.0.2"] == {"files": 3, "bytes": 5}
    diff = service.diff_versions(admin, "demo", "tables", 1, "0.0.0", "0.0.1")
    assert [f["path"] for f in diff["added"]] == ["extra.txt"]
    assert [f["path"] for f in diff["removed"]] == ["notes/meta.json"]
    assert [(f["path"], f["old_size"], f["size"]) for f in diff["modified"]] == [
        ("a.csv", len(CSV_0), len(CSV_1))]
    same = service.diff_versions(admin, "demo", "tables", 1, "0.0.1", "0.0.1")
    assert same == {"added": [], "removed": [], "modified": []}


def test_a_diff_walks_folders_added_removed_and_changed(seeded: tuple) -> None:
    service, admin, _ = seeded
    same = {f"same/{n}.txt": b"%d" % n for n in range(5)}
    old = commit(service, admin, "demo", "tables", {**same, "gone/x/y.txt": b"y", "f": b"1",
                                                    "was-file": b"w", "deep/a/b.txt": b"b"})
    new = commit(service, admin, "demo", "tables", {**same, "new/z.txt": b"z", "f": b"22",
                                                    "was-file/now.txt": b"n",
                                                    "deep/a/b.txt": b"bb"},
                 asset=old["ordinal"], parent=old["manifest"])
    diff = service.diff_versions(admin, "demo", "tables", new["ordinal"], old["version"],
                                 new["version"])
    assert [f["path"] for f in diff["added"]] == ["new/z.txt", "was-file/now.txt"]
    assert [f["path"] for f in diff["removed"]] == ["gone/x/y.txt", "was-file"]
    assert [(f["path"], f["old_size"], f["size"]) for f in diff["modified"]] == [
        ("deep/a/b.txt", 1, 2), ("f", 1, 2)]
