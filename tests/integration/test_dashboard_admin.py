"""The dashboard's admin pages in headless Chromium against ``ama-server serve``: a project
admin changes a member's role and the member's pages change, non-admins and forged forms are
refused, the audit log filters, and a user revokes one of their own tokens.

The project demo of ``site`` has ``admin`` (a server admin), wanda (writer), rita (reader)
and here pam, an admin of demo who is no server admin; otto is a reader of another project.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from ama_remote.dashboard.pages import csrf_token
from ama_remote.errors import Unauthenticated
from tests.integration.test_dashboard import Site, csrf_of, in_process, sign_in, site
from tests.services.browser import Browser
from tests.services.server import ADMIN

__all__ = ["site"]  # the fixture, shared with the dashboard's other tests


@pytest.fixture
def admins(site: Site) -> Site:
    site.service.add_user("pam", "pam@example.org")
    site.service.grant("demo", "pam", "admin")
    site.tokens["pam"] = site.service.issue_token("pam")
    site.tokens[ADMIN] = site.service.issue_token(ADMIN)
    return site


def forge(site: Site, who: Browser, path: str, form: dict[str, str]) -> requests.Response:
    """POST ``form`` to ``path`` as ``who``'s session, outside their pages: what another
    site or a script would send."""
    session = next(c["value"] for c in who.context.cookies() if c["name"] == "ama_session")
    return requests.post(site.url + path, data=form, cookies={"ama_session": session},
                         allow_redirects=False, timeout=30)


def members(site: Site) -> dict[str, str]:
    caller = site.service.authenticate(site.tokens[ADMIN])
    return {m["username"]: m["role"] for m in site.service.members(caller, "demo")}


def test_a_project_admin_grants_a_role_and_the_grantees_page_changes(
        admins: Site, browser: Callable[[], Browser]) -> None:
    site = admins
    rita = browser()
    sign_in(rita, site, "rita", "/p/demo/c/tables/a/1")
    assert rita.page.locator("form.edit").count() == 0

    pam = browser()
    page = pam.page
    sign_in(pam, site, "pam")
    pam.follow(page.get_by_role("link", name="Admin", exact=True))
    pam.follow(page.get_by_role("link", name="demo", exact=True))
    assert page.url.endswith("/p/demo/members")
    row = page.locator("table.members tbody tr", has_text="rita")
    assert row.locator("select").input_value() == "reader"
    row.locator("select").select_option("writer")
    pam.follow(row.get_by_role("button", name="Change"))
    assert page.locator("table.members tbody tr", has_text="rita").locator(
        "select").input_value() == "writer"
    # A user of no project yet: granted from the form below the table.
    page.fill("#grant-user", "otto")
    page.select_option("#grant-role", "reader")
    pam.follow("form.grant button")
    pam.shot("members-granted")
    assert members(site) == {ADMIN: "admin", "otto": "reader", "pam": "admin",
                             "rita": "writer", "wanda": "writer"}

    rita.page.reload()
    assert rita.page.locator("form.edit").count() == 1  # a writer now: the edit form
    rita.shot("grantee-writer")

    # otto's pages, as a session of his (a third browser is not needed for it).
    otto = {"ama_session": site.service.issue_token("otto", ttl=600)}
    assert ">demo</a>" in requests.get(site.url + "/", cookies=otto, timeout=30).text
    pam.follow(page.locator("table.members tbody tr", has_text="otto").get_by_role(
        "button", name="Revoke"))
    assert "otto" not in members(site)
    assert ">demo</a>" not in requests.get(site.url + "/", cookies=otto, timeout=30).text
    assert requests.get(site.url + "/p/demo", cookies=otto, timeout=30).status_code == 404


def test_non_admins_are_refused_the_admin_pages_and_forged_forms(
        admins: Site, browser: Callable[[], Browser]) -> None:
    site = admins

    def post(who: Browser, path: str, form: dict[str, str]) -> int:
        return forge(site, who, path, form).status_code

    rita = browser()
    sign_in(rita, site, "rita")
    assert rita.page.locator("header a", has_text="Admin").count() == 0
    assert rita.page.locator("header a", has_text="Tokens").count() == 1
    for path, status in [("/admin", 403), ("/admin/users", 403), ("/admin/audit", 403),
                         ("/admin/audit?project=demo", 403), ("/p/demo/members", 403),
                         ("/p/other/members", 404)]:
        answer = rita.page.goto(site.url + path)
        assert answer is not None and answer.status == status, path
        assert "wanda@example.org" not in rita.page.content()
    rita.shot("reader-refused-admin")
    # Valid CSRF tokens of users the service refuses.
    rita_csrf = csrf_of(rita)
    assert post(rita, "/p/demo/members", {"csrf": rita_csrf, "username": "rita",
                                          "role": "admin", "action": "grant"}) == 403
    assert post(rita, "/admin/users", {"csrf": rita_csrf, "username": "wanda",
                                       "action": "disable"}) == 403
    # Browsers are closed once done with: each keeps connections to the server's workers.
    rita.context.close()

    # Sessions of users who need no page here, as the sign-in form issues them.
    for user, path, form, status in [
            ("otto", "/p/demo/members", {"username": "otto", "role": "admin",
                                         "action": "grant"}, 404),
            ("pam", "/admin/users", {"username": "wanda", "action": "disable"}, 403)]:
        session = site.service.issue_token(user, ttl=600)
        cookies = {"ama_session": session}
        assert requests.get(site.url + path, cookies=cookies, timeout=30,
                            allow_redirects=False).status_code == status
        answer = requests.post(site.url + path, data={"csrf": csrf_token(session), **form},
                               cookies=cookies, allow_redirects=False, timeout=30)
        assert answer.status_code == status, (user, path)
        assert "wanda@example.org" not in answer.text

    # A server admin's browser, with no CSRF token, a wrong one, or another session's.
    admin = browser()
    sign_in(admin, site, ADMIN)
    for csrf in (None, "0" * 64, rita_csrf):
        form = {"username": "rita", "role": "admin", "action": "grant"}
        if csrf is not None:
            form["csrf"] = csrf
        answer = forge(site, admin, "/p/demo/members", form)
        assert answer.status_code == 403 and "CSRF" in answer.text, csrf
    assert members(site)["rita"] == "reader"
    assert "otto" not in members(site)
    site.service.authenticate(site.tokens["wanda"])  # not disabled


def test_the_audit_log_filters_by_action(admins: Site,
                                         browser: Callable[[], Browser]) -> None:
    site = admins
    b = browser()
    page = b.page
    sign_in(b, site, ADMIN)
    b.follow(page.get_by_role("link", name="Admin", exact=True))
    b.follow(page.get_by_role("link", name="Users", exact=True))
    row = page.locator("table.users tbody tr", has_text="wanda@example.org")
    b.follow(row.get_by_role("button", name="Disable"))
    assert page.locator("table.users tbody tr", has_text="wanda@example.org").locator(
        "td.state").inner_text() == "disabled"
    b.shot("users-disabled")
    with pytest.raises(Unauthenticated):
        site.service.authenticate(site.tokens["wanda"])
    # Their own row has no Disable button: a server admin cannot lock themselves out.
    assert page.locator("table.users tbody tr", has_text="admin@example.org").get_by_role(
        "button").count() == 0

    page.goto(site.url + "/admin/audit")
    actions = set(page.locator("table.audit tbody td:nth-child(4)").all_inner_texts())
    assert {"user.disable", "role.grant", "tags", "title"} <= actions
    page.select_option("select[name=action]", "user.disable")
    b.follow("form.filters button")
    assert "action=user.disable" in page.url
    rows = page.locator("table.audit tbody tr").all_inner_texts()
    assert len(rows) == 1
    assert rows[0].split("\t")[1:5] == [ADMIN, "", "user.disable", "wanda"]
    b.shot("audit-filtered")
    # Filtering by a time range that ends before anything happened leaves nothing.
    page.goto(site.url + "/admin/audit?until=2000-01-01")
    assert page.locator("table.audit tbody tr").all_inner_texts() == ["No entries match."]
    answer = page.goto(site.url + "/admin/audit?since=yesterday")
    assert answer is not None and answer.status == 400
    assert "since" in page.locator("p.error").inner_text()

    # A project admin reads the entries of their projects only.
    site.service.grant("other", "rita", "reader")
    b.context.close()
    pam = browser()
    sign_in(pam, site, "pam", "/admin/audit?action=role.grant")
    projects = set(pam.page.locator("table.audit tbody td:nth-child(3)").all_inner_texts())
    assert projects == {"demo"}


def test_a_user_revokes_one_of_their_own_tokens(admins: Site,
                                                browser: Callable[[], Browser]) -> None:
    site = admins
    b = browser()
    page = b.page
    sign_in(b, site, "rita")
    b.follow(page.get_by_role("link", name="Tokens", exact=True))
    rows = page.locator("table.tokens tbody tr")
    assert rows.count() == 2  # the token she signed in with, and this session's
    current = rows.filter(has_text="this session")
    assert current.count() == 1
    other = rows.filter(has_not_text="this session")
    token_id = other.locator("td").first.inner_text()
    b.follow(other.get_by_role("button"))
    assert page.url.endswith("/tokens")
    revoked = page.locator("table.tokens tbody tr", has_text="revoked")
    assert revoked.locator("td").first.inner_text() == token_id
    b.shot("token-revoked")
    with pytest.raises(Unauthenticated, match="revoked"):
        site.service.authenticate(site.tokens["rita"])
    # Still signed in by the session; someone else's token is not hers to revoke.
    wanda = site.service.authenticate(site.tokens["wanda"])
    theirs = site.service.tokens(wanda)[0]["id"]
    answer = forge(site, b, "/tokens", {"csrf": csrf_of(b), "token": str(theirs)})
    assert answer.status_code == 404
    site.service.authenticate(site.tokens["wanda"])
    # Revoking the session's own token signs the browser out.
    b.follow(page.locator("table.tokens tbody tr", has_text="this session").get_by_role(
        "button"))
    assert "/login" in page.url
    page.goto(site.url + "/")
    assert "/login" in page.url


def test_the_audit_log_pages_fifty_entries_at_a_time(tmp_path: Path) -> None:
    service, admin, client = in_process(tmp_path)
    for n in range(60):
        service.set_role(admin, "demo", "rita", "writer" if n % 2 == 0 else "reader")
    cookie = {"Cookie": f"ama_session={service.issue_token('ada')}"}

    def entries(path: str) -> tuple[list[str], list[str]]:
        answer = client.simulate_get(path, headers=cookie)
        assert answer.status_code == 200, answer.text[:500]
        body = answer.text.split('<table class="audit">')[1]
        rows = re.findall(r"<td>(\d{4}-\d\d-\d\dT[\d:]+Z)</td>", body)
        links = re.findall(r'<a rel="(?:prev|next)" href="([^"]+)"', body)
        return rows, [link.replace("&amp;", "&") for link in links]

    first, links = entries("/admin/audit?action=role.grant&project=demo")
    # The 60 changes, and rita's and wanda's roles granted on the server's console.
    assert len(first) == 50
    assert links == ["/admin/audit?page=2&project=demo&action=role.grant"]
    second, links = entries(links[0])
    assert len(second) == 12
    assert links == ["/admin/audit?page=1&project=demo&action=role.grant"]
