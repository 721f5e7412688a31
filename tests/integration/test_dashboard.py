"""The web dashboard in a real browser: headless Chromium (Playwright) against ``ama-server
serve`` under gunicorn on 127.0.0.1, and the number of SQL queries each page costs.

The server's database and storage are filled through the service layer in this process,
as the server's own commands do; the browser then sees them through the server. Every
browser test saves screenshots under tmp_path/screenshots.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import pytest
from sqlalchemy import event

from ama.plumbing.hashing import hash_bytes
from ama.plumbing.objects import Author, Input
from ama_remote.db import Database
from ama_remote.errors import Unauthenticated
from ama_remote.service import Caller, Service
from ama_remote.storage.local import LocalBackend
from tests.services.browser import Browser
from tests.services.server import RunningServer
from tests.unit.remote.test_service import build, upload

T0 = datetime(2026, 11, 27, 16, 0, 0, tzinfo=timezone.utc)
XSS_NAME = "<img src=x onerror=alert(1)>.png"
XSS_TITLE = "Weights </script><script>alert(2)</script>"
VISUALISATION = {"*.csv": {"viewer": "table", "options": {"rows": 5}}, "*.png": "image",
                 "*.json": "json"}
CSV_0 = b"species,length\nheron,94\nstork,102\n"
CSV_1 = b"species,length\nheron,94\nstork,102\ncrane,115\n"


def png(width: int = 48, height: int = 32, rgb: tuple[int, int, int] = (36, 87, 197)) -> bytes:
    """A real PNG of one colour: the browser must be able to decode the thumbnail."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def commit(service: Service, caller: Caller, project: str, cls: str,
           files: dict[str, bytes], asset: int | None = None, parent: str | None = None,
           message: str = "", inputs: tuple[Input, ...] = (),
           metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """Upload and commit a version holding ``files`` (paths with '/' become folders)."""
    manifest, objects = build(files, metadata, inputs, message,
                              Author("Ada Lovelace", "ada@example.org"))
    upload(service, caller, objects, project)
    result: dict[str, Any] = service.commit(caller, project, cls, asset, parent, manifest,
                                            f"key-{manifest}")
    return result


@dataclass
class Site:
    url: str
    service: Service
    tokens: dict[str, str]  # username -> token
    first: dict[str, Any]  # tables/1/0.0.0
    second: dict[str, Any]  # tables/1/0.0.1
    derived: dict[str, Any]  # tables/2/0.0.0, made from tables/1/0.0.1


def seed(service: Service, admin: Caller, other_storage: str) -> dict[str, Any]:
    """A class of two assets in project demo: tables/1 with two versions (a CSV, an image
    named like markup, JSON), tables/2 made from tables/1/0.0.1; users of each role, and
    otto, a member of another project only."""
    service.put_class(admin, "demo", "tables", description="Bird measurements",
                      visualisation=VISUALISATION)
    first = commit(service, admin, "demo", "tables",
                   {"a.csv": CSV_0, XSS_NAME: png(), "notes/meta.json": b'{"source": "field"}'},
                   message="first count", metadata={"season": "spring"})
    second = commit(service, admin, "demo", "tables",
                    {"a.csv": CSV_1, XSS_NAME: png(), "extra.txt": b"more birds\n"},
                    asset=1, parent=first["manifest"], message="add cranes")
    derived = commit(service, admin, "demo", "tables", {"model.bin": b"\x00" * 2048},
                     message="trained", inputs=(Input(second["manifest"], "tables/1/0.0.1",
                                                      "training-data"),))
    service.update_asset(admin, "demo", "tables", 1, title=XSS_TITLE, tags=["birds"])
    service.put_alias(admin, "demo", "tables", "herons", 1)
    service.create_project("other", other_storage)
    tokens = {}
    for name, project, role in [("wanda", "demo", "writer"), ("rita", "demo", "reader"),
                                ("otto", "other", "reader")]:
        service.add_user(name, f"{name}@example.org")
        service.grant(project, name, role)
        tokens[name] = service.issue_token(name)
    return {"first": first, "second": second, "derived": derived, "tokens": tokens}


@pytest.fixture
def site(start_ama_server: Callable[..., RunningServer], tmp_path: Path) -> Iterator[Site]:
    server = start_ama_server()
    db = Database(server.database_url)
    service = Service(db)
    seeded = seed(service, service.authenticate(server.token),
                  (tmp_path / "other-storage").as_uri())
    yield Site(server.url, service, seeded["tokens"], seeded["first"], seeded["second"],
               seeded["derived"])
    db.dispose()


def sign_in(b: Browser, site: Site, user: str, path: str = "/") -> None:
    page = b.page
    page.goto(site.url + path)
    assert "/login" in page.url  # no session yet: every page sends to the sign-in form
    page.fill("#token", site.tokens[user])
    b.follow("form.card button[type=submit]")
    assert "/login" not in page.url


def csrf_of(b: Browser) -> str:
    value: str = b.page.input_value("form.signout input[name=csrf]")
    return value


def test_a_user_browses_a_project_down_to_a_version_its_lineage_a_diff_and_a_search(
        site: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    page = b.page
    sign_in(b, site, "wanda")
    b.shot("projects")
    b.follow(page.get_by_role("link", name="demo", exact=True))
    b.follow(page.get_by_role("link", name="tables", exact=True))
    assert page.locator("table.assets tbody tr").count() == 2
    b.shot("class")
    b.follow(page.get_by_role("link", name="tables/1", exact=True))
    assert page.locator("h1 .title").inner_text() == XSS_TITLE
    versions = page.locator("table.versions tbody tr")
    assert versions.count() == 2
    assert "add cranes" in versions.nth(0).inner_text()
    assert "Ada Lovelace" in versions.nth(0).inner_text()
    b.shot("asset")

    b.follow(page.get_by_role("link", name="0.0.0", exact=True))
    assert page.locator("table.csv th").all_inner_texts() == ["species", "length"]
    assert page.locator("table.csv td").all_inner_texts() == ["heron", "94", "stork", "102"]
    page.wait_for_function("() => document.querySelector('figure.image img').complete")
    loaded = page.eval_on_selector("figure.image img", "i => i.naturalWidth")
    assert loaded == 48  # the thumbnail decoded: the PNG came through the page's own route
    assert XSS_NAME in page.locator("table.files").inner_text()
    assert page.input_value("#clone") == "ama clone tables/1/0.0.0"
    b.shot("version")
    # A folder opens on its own page, with the previews of its files.
    b.follow(page.get_by_role("link", name="notes/", exact=True))
    assert "path=notes" in page.url
    assert page.locator("table.files td.path").all_inner_texts() == ["meta.json"]
    assert '"source": "field"' in page.locator("figure.text pre").inner_text()
    b.shot("version-folder")
    b.follow(page.get_by_role("link", name="tables/1/0.0.0", exact=True))
    assert page.url.endswith("/v/0.0.0#files")
    assert "notes/" in page.locator("table.files").inner_text()

    # The lineage graph of tables/2 links to the version it was made from.
    page.goto(site.url + "/p/demo/c/tables/a/2")
    b.follow(page.locator("svg.lineage a").first)
    assert page.url.endswith("/p/demo/c/tables/a/1/v/0.0.1")
    assert page.locator("h1").inner_text() == "tables/1/0.0.1"
    b.shot("lineage-input")

    page.goto(site.url + "/p/demo/c/tables/a/1")
    b.follow(page.get_by_role("link", name="diff", exact=True))
    rows = {r.split("\t")[1]: r.split("\t")[0]
            for r in page.locator("table.diff tbody tr").all_inner_texts()}
    assert rows == {"extra.txt": "added", "notes/meta.json": "removed", "a.csv": "modified"}
    b.shot("diff")

    page.goto(site.url + "/p/demo")
    page.fill("#q", hash_bytes(CSV_0))
    b.follow("form.search button")
    found = page.locator("table.results tbody tr").all_inner_texts()
    assert len(found) == 1 and found[0].startswith("tables/1/0.0.0\tfile\ta.csv")
    b.shot("search-file")
    assert b.dialogs == []


def test_a_local_file_is_hashed_in_the_browser_and_its_versions_found(
        site: Site, browser: Callable[[], Browser], tmp_path: Path) -> None:
    import base64
    import random

    import blake3

    b = browser()
    page = b.page
    sign_in(b, site, "rita", "/p/demo/search")
    assert page.locator(".by-file").is_visible()  # hidden until the script runs
    rng = random.Random(3)
    for length in (0, 1, 1023, 1024, 1025, 2048, 2049, 65536, 1024 * 1024 + 1):
        data = rng.randbytes(length)
        got = page.evaluate("b64 => amaBlake3.hashBytes("
                            "Uint8Array.from(atob(b64), c => c.charCodeAt(0)))",
                            base64.b64encode(data).decode())
        assert got == blake3.blake3(data).hexdigest(), length
    # A file read in slices that cut chunks and blocks anywhere, with progress per slice.
    data = rng.randbytes(5 * 1024 * 1024)
    got, steps, last = page.evaluate(
        """async b64 => {
             const file = new File([Uint8Array.from(atob(b64), c => c.charCodeAt(0))], "r");
             const seen = [];
             const id = await amaBlake3.hashFile(file, (done, total) => seen.push(done),
                                                 100003);
             return [id, seen.length, seen[seen.length - 1]];
           }""", base64.b64encode(data).decode())
    assert got == blake3.blake3(data).hexdigest()
    assert (steps, last) == (-(-len(data) // 100003), len(data))

    # Picking a file searches for its id; the file itself is not sent.
    mine = tmp_path / "my-copy.csv"
    mine.write_bytes(CSV_0)
    page.set_input_files("#pick", str(mine))
    page.wait_for_url("**/search?q=*")
    assert page.input_value("#q") == hash_bytes(CSV_0)
    found = page.locator("table.results tbody tr").all_inner_texts()
    assert len(found) == 1 and found[0].startswith("tables/1/0.0.0\tfile\ta.csv")
    b.shot("search-by-local-file")
    assert b.dialogs == []


def test_a_writer_edits_the_tags_of_an_asset(site: Site,
                                             browser: Callable[[], Browser]) -> None:
    b = browser()
    page = b.page
    sign_in(b, site, "wanda", "/p/demo/c/tables/a/1")
    page.click("details summary")
    page.fill("#tags", "birds, reviewed, gold")
    b.follow("form.edit button")
    assert page.locator("dd.tags .pill").all_inner_texts() == ["birds", "gold", "reviewed"]
    b.shot("tags-edited")
    admin = site.service.authenticate(site.tokens["wanda"])
    assert site.service.get_asset(admin, "demo", "tables", 1)["tags"] == [
        "birds", "gold", "reviewed"]
    # The class's list filters by the new tag.
    page.goto(site.url + "/p/demo/c/tables?tag=gold")
    assert page.locator("table.assets tbody tr").all_inner_texts()[0].startswith("tables/1")
    assert page.locator("table.assets tbody tr").count() == 1


def test_a_reader_sees_no_edit_controls_and_forged_posts_are_refused(
        site: Site, browser: Callable[[], Browser]) -> None:
    reader = browser()
    sign_in(reader, site, "rita", "/p/demo/c/tables/a/1")
    assert reader.page.locator("form.edit").count() == 0
    assert reader.page.locator("details").count() == 0
    reader.shot("reader-asset")
    target = site.url + "/p/demo/c/tables/a/1"
    # The reader's own valid CSRF token: the role check refuses it.
    answer = reader.context.request.post(target, form={"csrf": csrf_of(reader),
                                                       "tags": "vandalised"},
                                         max_redirects=0)
    assert answer.status == 403
    writer = browser()
    sign_in(writer, site, "wanda", "/p/demo/c/tables/a/1")
    for form in ({"tags": "forged"}, {"csrf": "0" * 64, "tags": "forged"},
                 {"csrf": csrf_of(reader), "tags": "forged"}):
        answer = writer.context.request.post(target, form=form, max_redirects=0)
        assert answer.status == 403, form
        assert "CSRF" in answer.text()
    caller = site.service.authenticate(site.tokens["rita"])
    assert site.service.get_asset(caller, "demo", "tables", 1)["tags"] == ["birds"]


def test_a_member_of_another_project_sees_nothing_of_it(
        site: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    page = b.page
    sign_in(b, site, "otto")
    assert page.locator("main table tbody").inner_text().split() == ["other", "reader"]
    blob = hash_bytes(CSV_0)
    for path in ["/p/demo", "/p/demo/c/tables", "/p/demo/c/tables/a/1",
                 "/p/demo/c/tables/a/1/v/0.0.0", "/p/demo/c/tables/a/1/diff",
                 f"/p/demo/search?q={blob}", f"/p/demo/raw/{blob}"]:
        answer = page.goto(site.url + path)
        assert answer is not None and answer.status == 404, path
        text = page.content()
        for secret in ("tables", "Weights", "herons", "heron", "birds", "wanda"):
            assert secret not in text.replace("/p/demo/c/tables", ""), (path, secret)
    b.shot("outsider-404")


def test_markup_in_file_names_and_titles_renders_as_text(
        site: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    page = b.page
    sign_in(b, site, "rita", "/p/demo/c/tables/a/1")
    assert page.locator("h1 .title").inner_text() == XSS_TITLE
    page.goto(site.url + "/p/demo/c/tables")
    assert XSS_TITLE in page.locator("table.assets").inner_text()
    answer = page.goto(site.url + "/p/demo/c/tables/a/1/v/0.0.0")
    assert answer is not None
    policy = answer.headers["content-security-policy"]
    assert "unsafe-inline" not in policy and "script-src 'self'" in policy
    assert page.locator("figure.image figcaption").inner_text() == XSS_NAME
    assert page.locator("td.path", has_text="onerror").inner_text() == XSS_NAME
    assert page.locator("img[src='x']").count() == 0  # never parsed as an element
    b.shot("markup-as-text")
    assert b.dialogs == []


def test_a_session_cookie_is_strict_and_signing_out_revokes_it(
        site: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    sign_in(b, site, "rita")
    cookie = next(c for c in b.context.cookies() if c["name"] == "ama_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert not cookie["secure"]  # plain HTTP here; under TLS the cookie is Secure
    session = cookie["value"]
    assert session != site.tokens["rita"]  # a session token of its own
    site.service.authenticate(session)
    b.follow("form.signout button")
    assert "/login" in b.page.url
    with pytest.raises(Unauthenticated, match="revoked"):
        site.service.authenticate(session)
    b.context.add_cookies([{**cookie}])  # the old cookie, put back, opens nothing
    b.page.goto(site.url + "/p/demo")
    assert "/login" in b.page.url
    b.shot("signed-out")


def test_a_wrong_token_is_refused_on_the_sign_in_page(
        site: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    b.page.goto(site.url + "/login")
    b.page.fill("#token", "ama_not-a-token")
    b.follow("form.card button[type=submit]")
    assert b.page.locator("p.error").inner_text() == "the token is not valid"
    assert not [c for c in b.context.cookies() if c["name"] == "ama_session"]
    b.shot("sign-in-refused")


# -- SQL queries per page ----------------------------------------------------------------------

class QueryCounter:
    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


def in_process(tmp_path: Path, **options: Any) -> tuple[Service, Caller, Any]:
    """The service over SQLite in tmp_path, seeded, its server admin, and a test client of
    the app (falcon.testing: in this process, so that its queries can be counted);
    ``options`` go to the Service."""
    import falcon.testing

    from ama_remote.app import create_app
    from ama_remote.config import ServerConfig

    db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
    db.migrate()
    service = Service(db, **options)
    service.create_project("demo", (tmp_path / "storage").as_uri())
    service.add_user("ada", "ada@example.org", admin=True)
    admin = service.authenticate(service.issue_token("ada"))
    seed(service, admin, (tmp_path / "other").as_uri())
    return service, admin, falcon.testing.TestClient(create_app(service,
                                                                ServerConfig(tmp_path, "")))


def test_under_tls_the_cookies_are_the_hosts_own_and_secure(tmp_path: Path) -> None:
    """Over HTTPS, at the host's root, every cookie is Secure and named ``__Host-``: a
    browser takes one only from this very host, so a neighbour subdomain (or a page over
    plain HTTP) can plant neither the sign-in form's token nor a session of its own."""
    service, _, client = in_process(tmp_path)
    form = client.simulate_get("/login", protocol="https")
    cookie = form.cookies["__Host-ama_login"]
    assert cookie.secure and cookie.path == "/" and cookie.domain is None
    assert "ama_login" not in form.cookies
    nonce = cookie.value
    body = f"csrf={nonce}&token={service.issue_token('ada')}"
    posted = {"Content-Type": "application/x-www-form-urlencoded"}
    # A token a neighbour planted under the plain name is not the form's.
    planted = client.simulate_post("/login", protocol="https", body=body, headers={
        **posted, "Cookie": f"ama_login={nonce}"})
    assert planted.status_code == 403 and not planted.cookies
    answer = client.simulate_post("/login", protocol="https", body=body, headers={
        **posted, "Cookie": f"__Host-ama_login={nonce}"})
    assert answer.status_code == 303
    session = answer.cookies["__Host-ama_session"]
    assert session.secure and session.http_only and session.same_site == "Strict"
    assert session.path == "/"
    dropped = answer.cookies["__Host-ama_login"]  # spent: forgotten, Secure as it was set
    assert dropped.value == "" and dropped.secure and dropped.path == "/"
    # The session is read under its own name only: a planted plain one signs nobody in.
    assert client.simulate_get("/p/demo", protocol="https", headers={
        "Cookie": f"ama_session={session.value}"}).status_code == 303
    assert client.simulate_get("/p/demo", protocol="https", headers={
        "Cookie": f"__Host-ama_session={session.value}"}).status_code == 200
    # Behind a proxy that ends TLS and says so (in either header), the server itself
    # speaking HTTP: the same, so that the cookie never goes over plain HTTP.
    for said in ({"X-Forwarded-Proto": "https"}, {"Forwarded": "for=10.0.0.1;proto=https"}):
        form = client.simulate_get("/login", headers=said)
        assert form.cookies["__Host-ama_login"].secure, said
    plain = client.simulate_get("/login").cookies["ama_login"]
    assert not plain.secure and plain.path == "/"
    # Under a path (a prefix no __Host- cookie may have), the path keeps them apart.
    under = client.simulate_get("/login", protocol="https", root_path="/ama").cookies
    assert under["ama_login"].secure and under["ama_login"].path == "/ama/"


def test_under_a_proxys_path_every_link_and_cookie_keeps_to_it(tmp_path: Path) -> None:
    """Served under a path (a proxy's SCRIPT_NAME, or ``ama dashboard``'s secret one), the
    pages link, redirect and scope their cookies under it, never to the host's root."""
    service, _, client = in_process(tmp_path)
    form = client.simulate_get("/login", root_path="/ama", query_string="next=/elsewhere")
    assert form.cookies["ama_login"].path == "/ama/"
    nonce = form.cookies["ama_login"].value
    # A next page outside the site's path is not followed: home instead.
    assert 'name="next" value="/ama/"' in form.text
    assert 'href="/ama/static/dashboard.css"' in form.text and 'action="/ama/login"' in form.text
    answer = client.simulate_post(
        "/login", root_path="/ama", body=f"csrf={nonce}&next=/ama/p/demo&token="
        f"{service.issue_token('ada')}", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": f"ama_login={nonce}"})
    assert answer.status_code == 303 and answer.headers["location"] == "/ama/p/demo"
    session = answer.cookies["ama_session"]
    assert session.path == "/ama/"
    page = client.simulate_get("/p/demo", root_path="/ama",
                               headers={"Cookie": f"ama_session={session.value}"})
    links = re.findall(r'(?:href|action|src)="(/[^"]*)"', page.text)
    assert links and all(link.startswith("/ama/") for link in links), links
    assert client.simulate_get("/p/demo", root_path="/ama").headers["location"] == (
        "/ama/login?next=%2Fama%2Fp%2Fdemo")
    # Nor to another site of the host by a dot segment, however it is written.
    for sneaky in ("/ama/../v1/projects", "/ama/%2e%2E/other", "/ama/p/%2E/x",
                   "/ama/..%5cother", "/ama/p\\..\\x"):
        form = client.simulate_get("/login", root_path="/ama", params={"next": sneaky})
        assert 'name="next" value="/ama/"' in form.text, sneaky
    assert 'name="next" value="/ama/p/demo?path=a..b"' in client.simulate_get(
        "/login", root_path="/ama", params={"next": "/ama/p/demo?path=a..b"}).text


def test_a_download_is_named_only_by_a_plain_file_name(tmp_path: Path) -> None:
    """A writer who sends a reader a link chooses its name= : only a plain file name is
    given to the download; anything else (a quote, a path, a trick name) gets the id."""
    service, admin, client = in_process(tmp_path)
    commit(service, admin, "demo", "tables", {"report.csv": b"a,b\n"})
    oid = hash_bytes(b"a,b\n")
    cookie = {"Cookie": f"ama_session={service.issue_token('ada')}"}

    def named(name: str) -> str:
        answer = client.simulate_get(f"/p/demo/raw/{oid}", params={"name": name},
                                     headers=cookie)
        assert answer.status_code == 200 and answer.content == b"a,b\n"
        return str(answer.headers["content-disposition"])

    assert named("sub/report.csv") == 'attachment; filename="report.csv"'
    for trick in ('x.csv"; filename="Invoice.hta', "..", "a b.csv", "résumé.pdf", ""):
        assert named(trick) == f'attachment; filename="{oid}"', trick


def test_pages_cost_a_bounded_number_of_queries_whatever_the_number_of_assets(
        tmp_path: Path) -> None:
    service, admin, client = in_process(tmp_path)
    db = service.db
    session = service.issue_token("ada")
    pages = ["/", "/p/demo", "/p/demo/c/tables", "/p/demo/c/tables?tag=birds&sort=updated",
             "/p/demo/c/tables/a/1", "/p/demo/c/tables/a/1/v/0.0.1",
             "/p/demo/c/tables/a/1/diff?from=0.0.0&to=0.0.1", "/admin", "/admin/users",
             "/admin/audit", "/admin/audit?action=tags&project=demo", "/tokens",
             "/p/demo/members"]

    def costs() -> dict[str, int]:
        counter = QueryCounter(db)
        found = {}
        for path in pages:
            before = counter.count
            answer = client.simulate_get(path, headers={"Cookie": f"ama_session={session}"})
            assert answer.status_code == 200, (path, answer.text[:500])
            found[path] = counter.count - before
        event.remove(db.engine, "before_cursor_execute", counter._seen)
        return found

    small = costs()
    # Sixty more assets, five more versions of tables/1, and many more files in each.
    parent = service.get_asset(admin, "demo", "tables", 1)["latest"]["manifest"]
    for n in range(5):
        files = {f"part-{k}.csv": f"n,k\n{n},{k}\n".encode() for k in range(40)}
        parent = commit(service, admin, "demo", "tables", {**files, "a.csv": CSV_1},
                        asset=1, parent=parent, message=f"batch {n}")["manifest"]
    for n in range(60):
        commit(service, admin, "demo", "tables", {"x.txt": f"{n}".encode()},
               metadata={"n": n})
        service.update_asset(admin, "demo", "tables", n + 3, tags=["birds"])
    large = costs()
    assert large == small
    assert max(small.values()) <= 40, small
    db.dispose()


class CountingStorage(LocalBackend):
    """The project's folder storage, counting what is read from it."""

    reads = 0

    def open(self, key: str) -> BinaryIO:
        CountingStorage.reads += 1
        return super().open(key)

    def stat(self, key: str) -> int | None:
        CountingStorage.reads += 1
        return super().stat(key)


def test_the_version_page_reads_only_the_folder_it_shows_whatever_the_version_size(
        tmp_path: Path) -> None:
    service, admin, client = in_process(
        tmp_path, open_storage=lambda url: CountingStorage(url[len("file://"):], url))
    db = service.db
    session = service.issue_token("ada")

    def shape(folders: int, per_folder: int, flat: int) -> dict[str, bytes]:
        files = {f"d{d:04}/f{f:04}.csv": f"d,f\n{d},{f}\n".encode()
                 for d in range(folders) for f in range(per_folder)}
        files.update({f"flat/f{f:05}.csv": f"f\n{f}\n".encode() for f in range(flat)})
        files["deep/a/b/c/last.csv"] = b"x\n1\n"
        return files

    small = commit(service, admin, "demo", "tables", shape(3, 15, 250))
    large = commit(service, admin, "demo", "tables", shape(30, 20, 1_000))
    counter = QueryCounter(db)

    def visit(version: dict[str, Any], query: str) -> tuple[int, int, str]:
        before, reads = counter.count, CountingStorage.reads
        path = f"/p/demo/c/tables/a/{version['ordinal']}/v/{version['version']}{query}"
        answer = client.simulate_get(path, headers={"Cookie": f"ama_session={session}"})
        assert answer.status_code == 200, (path, answer.text[:500])
        return counter.count - before, CountingStorage.reads - reads, answer.text

    pages = ["", "?path=d0001", "?path=flat", "?path=flat&page=2", "?path=deep/a/b/c"]
    for query in pages:
        queries, reads, _ = visit(small, query)
        assert visit(large, query)[:2] == (queries, reads), query
        assert reads <= 12, query  # the previews' heads, no more
    _, _, root = visit(large, "")
    assert root.count('class="path folder"') == 32  # deep, d0000…d0029, flat
    assert "?path=d0029#files" in root and "f0000.csv" not in root
    _, _, flat = visit(large, "?path=flat&page=3")
    listed = re.findall(r'<td class="path">(f\d+\.csv)</td>', flat)
    assert listed == [f"f{n:05}.csv" for n in range(400, 600)]
    assert "1000 entries" in flat and "path=flat&amp;page=4#files" in flat
    _, _, deep = visit(large, "?path=deep/a/b/c")
    assert '<td class="path">last.csv</td>' in deep and "path=deep%2Fa%2Fb#files" in deep
    missing = client.simulate_get(f"/p/demo/c/tables/a/{large['ordinal']}/v/0.0.0?path=d0001/x",
                                  headers={"Cookie": f"ama_session={session}"})
    assert missing.status_code == 404 and "no folder &#39;d0001/x&#39;" in missing.text
    db.dispose()


# -- ama dashboard ------------------------------------------------------------------------------

def test_ama_dashboard_serves_the_folder_remote_on_loopback_until_ctrl_c(
        clean_env: Path, tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    import requests

    from ama_remote.embedded import open_embedded

    service, local = open_embedded(clean_env / ".ama" / "remote")
    service.put_class(local, "default", "scans", description="Local scans")
    service.db.dispose()
    script = Path(sys.executable).parent / "ama"
    # Ctrl-C restored in the child: pytest run in the background from a script starts
    # with SIGINT ignored, and an ignored signal stays ignored across exec.
    process = subprocess.Popen([str(script), "dashboard", "--no-browser"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        assert lines[0].startswith("Serving the dashboard of file://"), lines
        url = lines[0].split(" at ")[1].strip()
        assert url.startswith("http://127.0.0.1:")
        login = lines[1].split(": ", 1)[1].strip()
        assert login.startswith(url + "login/once?key=")
        assert lines[2] == "Press Ctrl-C to stop.\n"

        assert requests.get(url + "p/default", timeout=10, allow_redirects=False
                            ).status_code == 303  # no session: to the sign-in page
        browser = requests.Session()
        # The pages live under a secret path of their own (see the next test).
        root = urlsplit(url).path
        assert len(root) > 20 and root.endswith("/")
        page = browser.get(login, timeout=10)  # signed in, on a page that moves on home
        assert page.status_code == 200 and f'content="0;url={root}"' in page.text
        assert ">default</a>" in browser.get(url, timeout=10).text
        assert "Local scans" in browser.get(url + "p/default", timeout=10).text
        # The link signs in once: a second browser cannot use it again.
        assert requests.get(login, timeout=10).status_code == 403

        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out == "Stopped.\n"
    assert "Traceback" not in err
    with pytest.raises(requests.ConnectionError):
        requests.get(url, timeout=5)


def test_ama_dashboards_session_goes_to_no_other_server_of_the_machine(
        clean_env: Path, browser: Callable[[], Browser]) -> None:
    """A browser sends a cookie of 127.0.0.1 to every port of it. Another user of the
    machine who gets a signed-in user to open a page of a server of theirs on 127.0.0.1
    must not receive the session (it would sign them in to this user's remote), and their
    own dashboard must not overwrite it."""
    import http.server
    import threading

    import requests

    from ama.porcelain.config import Config
    from ama.porcelain.dashboard import open_dashboard

    heard: list[tuple[str, str]] = []  # (path, Cookie header) of each request

    class Neighbour(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
            heard.append((self.path, self.headers.get("Cookie") or ""))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"a neighbour's page")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    neighbour = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Neighbour)
    mine, theirs = (open_dashboard(Config.open()) for _ in range(2))
    servers = [neighbour, mine.server, theirs.server]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        b = browser()
        b.page.goto(mine.login_url)
        b.page.wait_for_url(mine.url)
        assert b.page.locator("a", has_text="default").count() == 1
        # The user opens the neighbour's pages: their cookies stay home.
        for path in ("/", "/login", urlsplit(theirs.url).path):
            b.page.goto(f"http://127.0.0.1:{neighbour.server_port}{path}")
            assert "a neighbour's page" in b.page.content()
        assert {path for path, _ in heard} >= {"/", "/login", urlsplit(theirs.url).path}
        assert not any("ama_" in cookie for _, cookie in heard), heard
        # Each dashboard has its secret path; the port alone leads nowhere.
        assert urlsplit(mine.url).path != urlsplit(theirs.url).path
        port = f"http://127.0.0.1:{mine.server.server_port}"
        for path in ("/", "/login", "/p/default", urlsplit(theirs.url).path):
            bare = requests.get(port + path, timeout=10, allow_redirects=False)
            assert bare.status_code == 404 and urlsplit(mine.url).path not in bare.text
        # Signing in to the other dashboard leaves this one signed in.
        b.page.goto(theirs.login_url)
        b.page.wait_for_url(theirs.url)
        b.page.goto(mine.url + "p/default")
        assert b.page.url == mine.url + "p/default"
        assert b.page.locator("form.signout").count() == 1
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()


def test_image_previews_are_served_as_thumbnails_and_downloads_as_they_are(
        tmp_path: Path) -> None:
    import io

    from PIL import Image

    from ama.plumbing.thumbnails import THUMBNAIL_SIDE

    service, admin, client = in_process(tmp_path)
    out = io.BytesIO()
    Image.effect_noise((4000, 3000), 64).convert("RGB").save(out, "PNG")
    photo = out.getvalue()
    commit(service, admin, "demo", "tables", {"big.png": photo, "fake.png": b"not an image"})
    cookie = {"Cookie": f"ama_session={service.issue_token('ada')}"}

    def get(data: bytes, query: str) -> Any:
        return client.simulate_get(f"/p/demo/raw/{hash_bytes(data)}", query_string=query,
                                   headers=cookie)

    shown = get(photo, "name=big.png&view=image")
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/png"
    with Image.open(io.BytesIO(shown.content)) as thumbnail:
        assert thumbnail.size == (THUMBNAIL_SIDE, THUMBNAIL_SIDE * 3 // 4)
    assert len(shown.content) <= THUMBNAIL_SIDE * THUMBNAIL_SIDE * 3 < len(photo)
    # A download is the file itself; what Pillow cannot read is sent as it is.
    assert get(photo, "name=big.png").content == photo
    assert get(b"not an image", "name=fake.png&view=image").content == b"not an image"
    # Under the same role checks as the file: otto, of another project, sees nothing.
    outsider = client.simulate_get(f"/p/demo/raw/{hash_bytes(photo)}",
                                   query_string="name=big.png&view=image",
                                   headers={"Cookie": f"ama_session={service.issue_token('otto')}"})
    assert outsider.status_code == 404 and b"\x89PNG" not in outsider.content
    service.db.dispose()
