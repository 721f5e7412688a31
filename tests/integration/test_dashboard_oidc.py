"""Signing in to the dashboard with OpenID Connect: headless Chromium, ``ama-server serve``
under gunicorn and a real provider (oidc-provider-mock), all on the loopback interface.

The provider is named ``localhost`` and the server ``127.0.0.1``: two sites, as a real
provider and server are, so the browser applies its cross-site cookie rules to the way
back from the provider.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests

from ama_remote.db import Database
from ama_remote.errors import Unauthenticated
from ama_remote.service import Service
from tests.services.browser import Browser
from tests.services.oidc import Provider, serve_provider
from tests.services.server import run_ama_server, serving

CLIENT_ID = "ama-dashboard"
CLIENT_SECRET = "web-client-secret"
OPEN_DOMAIN = "open.example"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    yield from serve_provider("localhost", require_nonce=True)


@dataclass
class Site:
    url: str
    service: Service
    log: Path


@pytest.fixture(scope="module")
def site(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """``ama-server serve`` trusting ``provider``; olga (olga@example.org) reads demo."""
    root = tmp_path_factory.mktemp("dashboard-oidc")
    home = root / "home"
    storage = f"file://{root / 'storage'}"
    database = f"sqlite:///{root / 'ama.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMA_")}
    env.update(AMA_SERVER_HOME=str(home), AMA_DATABASE_URL=database)
    run_ama_server(env, "init", "--admin", "admin", "--email", "admin@example.org",
                   "--storage", storage)
    run_ama_server(env, "project", "add", "demo", "--storage", storage, "--no-check")
    with open(home / "server.toml", "a", encoding="utf-8") as f:
        f.write(f'oidc_issuer = "{provider.issuer}"\n'
                f'oidc_client_id = "{CLIENT_ID}"\n'
                f'oidc_client_secret = "{CLIENT_SECRET}"\n'
                f'open_signup_domains = ["{OPEN_DOMAIN}"]\n')
    db = Database(database)
    service = Service(db)
    service.add_user("olga", "olga@example.org")
    service.grant("demo", "olga", "reader")
    provider.add_user("olga", "olga@example.org")
    log = root / "server.log"
    with serving(env, log) as running:
        yield Site(running.url, service, log)
    db.dispose()
    # No ID token or session token ever reaches the server's log.
    text = log.read_text(errors="replace")
    assert "eyJ" not in text and "ama_" not in text


def at_provider(b: Browser, sub: str) -> None:
    """On the provider's page: sign in as ``sub``, as a user types it."""
    b.page.wait_for_selector("input[name=sub]")
    b.page.fill("input[name=sub]", sub)
    b.page.get_by_role("button", name="Authorize").click()


def session_cookie(b: Browser) -> dict[str, object] | None:
    return next((c for c in b.context.cookies() if c["name"] == "ama_session"), None)


def test_a_user_signs_in_with_the_issuer_lands_on_the_projects_and_signs_out(
        site: Site, provider: Provider, browser: Callable[[], Browser]) -> None:
    b = browser()
    page = b.page
    page.goto(site.url + "/")
    assert "/login" in page.url
    button = page.get_by_role("link", name=f"Sign in with localhost:{provider.port}")
    b.shot("oidc-sign-in")
    button.click()
    page.wait_for_url(provider.issuer + "/**")
    at_provider(b, "olga")
    page.wait_for_url(site.url + "/")
    assert page.locator(".who").inner_text() == "olga"
    assert page.locator("main table tbody").inner_text().split() == ["demo", "reader"]
    b.shot("oidc-projects")

    cookie = session_cookie(b)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    session = str(cookie["value"])
    assert site.service.authenticate(session).username == "olga"
    # The pre-login cookie was spent by the callback.
    assert not [c for c in b.context.cookies() if c["name"] == "ama_oidc"]

    b.follow("form.signout button")
    assert "/login" in page.url
    with pytest.raises(Unauthenticated, match="revoked"):
        site.service.authenticate(session)
    b.context.add_cookies([{**cookie}])  # type: ignore[list-item]
    page.goto(site.url + "/p/demo")
    assert "/login" in page.url  # the old cookie opens nothing


def test_the_page_asked_for_is_the_page_reached(
        site: Site, browser: Callable[[], Browser]) -> None:
    b = browser()
    b.page.goto(site.url + "/p/demo")
    b.page.locator(".oidc a.button").click()
    at_provider(b, "olga")
    b.page.wait_for_url(site.url + "/p/demo")
    assert b.page.locator("h1").inner_text() == "demo"


def test_a_forged_or_replayed_state_is_refused(
        site: Site, provider: Provider, browser: Callable[[], Browser]) -> None:
    # Someone signs in, and the way back from the provider is kept.
    attacker = browser()
    callbacks: list[str] = []
    attacker.page.on("request", lambda r: callbacks.append(r.url)
                     if "/login/oidc/callback" in r.url else None)
    attacker.page.goto(site.url + "/login")
    attacker.page.locator(".oidc a.button").click()
    at_provider(attacker, "olga")
    attacker.page.wait_for_url(site.url + "/")
    assert len(callbacks) == 1 and "state=" in callbacks[0] and "code=" in callbacks[0]

    # Replayed in the same browser: its pre-login cookie is spent.
    answer = attacker.page.goto(callbacks[0])
    assert answer is not None and answer.status == 401
    assert "state does not match" in attacker.page.locator("p.error").inner_text()
    # Chromium keeps idle connections open, each holding one of the server's two sync
    # workers: a third browser would wait for a worker.
    attacker.context.close()

    # Opened in another browser that is signing in itself: its state is not this one.
    victim = browser()
    victim.page.goto(site.url + "/login")
    victim.page.locator(".oidc a.button").click()
    victim.page.wait_for_url(provider.issuer + "/**")
    answer = victim.page.goto(callbacks[0])
    assert answer is not None and answer.status == 401
    assert "state does not match" in victim.page.locator("p.error").inner_text()
    assert victim.page.get_by_role("link", name="Sign in").count() == 1  # the next step
    assert session_cookie(victim) is None
    victim.shot("oidc-forged-state")
    victim.context.close()

    # A state made up, without any sign-in started.
    stranger = browser()
    answer = stranger.page.goto(site.url + "/login/oidc/callback?code=x&state=forged")
    assert answer is not None and answer.status == 401
    assert session_cookie(stranger) is None
    assert "Traceback" not in stranger.page.content()


def test_an_email_no_user_has_is_refused_with_the_next_step(
        site: Site, provider: Provider, browser: Callable[[], Browser]) -> None:
    provider.add_user("nadia", "nadia@elsewhere.example")
    b = browser()
    b.page.goto(site.url + "/login")
    b.page.locator(".oidc a.button").click()
    at_provider(b, "nadia")
    b.page.wait_for_url(site.url + "/login/oidc/callback**")
    assert b.page.locator("p.error").inner_text() == (
        "no user on this server has the email nadia@elsewhere.example")
    assert "ama auth signup" in b.page.locator("p.hint").inner_text()
    assert session_cookie(b) is None
    b.shot("oidc-unknown-email")


def test_an_email_of_an_open_domain_signs_up_as_the_cli_login_does(
        site: Site, provider: Provider, browser: Callable[[], Browser]) -> None:
    provider.add_user("pia", f"pia@{OPEN_DOMAIN}")
    b = browser()
    b.page.goto(site.url + "/login")
    b.page.locator(".oidc a.button").click()
    at_provider(b, "pia")
    b.page.wait_for_url(site.url + "/")
    assert b.page.locator(".who").inner_text() == "pia"
    assert site.service.user_by_email(f"pia@{OPEN_DOMAIN}")["username"] == "pia"


def test_the_provider_refusing_is_said_on_the_page(
        site: Site, provider: Provider, browser: Callable[[], Browser]) -> None:
    b = browser()
    b.page.goto(site.url + "/login")
    b.page.locator(".oidc a.button").click()
    b.page.wait_for_url(provider.issuer + "/**")
    b.page.get_by_role("button", name="Deny").click()
    b.page.wait_for_url(site.url + "/login/oidc/callback**")
    assert b.page.locator("p.error").inner_text().startswith(
        f"localhost:{provider.port} refused the sign-in")
    assert session_cookie(b) is None


# -- without a browser: a server with no issuer, and an issuer that does not answer ---------

def _client(tmp_path: Path, **oidc: str):  # type: ignore[no-untyped-def]
    import falcon.testing

    from ama_remote.app import create_app
    from ama_remote.config import ServerConfig

    db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
    db.migrate()
    return falcon.testing.TestClient(create_app(Service(db), ServerConfig(tmp_path, "",
                                                                          **oidc)))


def test_without_an_issuer_the_sign_in_page_has_no_button(tmp_path: Path) -> None:
    client = _client(tmp_path)
    page = client.simulate_get("/login")
    assert page.status_code == 200 and "/login/oidc" not in page.text
    assert 'name="token"' in page.text
    answer = client.simulate_get("/login/oidc")
    assert answer.status_code == 404
    assert "no OpenID Connect sign-in" in answer.text and "ama auth info --token" in answer.text


def test_an_issuer_that_does_not_answer_is_an_error_page(tmp_path: Path) -> None:
    from tests.services.server import free_port

    client = _client(tmp_path, oidc_issuer=f"http://127.0.0.1:{free_port()}",
                     oidc_client_id=CLIENT_ID)
    assert "Sign in with 127.0.0.1:" in client.simulate_get("/login").text
    answer = client.simulate_get("/login/oidc")
    assert answer.status_code == 502
    assert answer.headers["content-type"].startswith("text/html")
    assert "cannot fetch the OpenID configuration" in answer.text
    assert "try again later" in answer.text and "Traceback" not in answer.text


@pytest.mark.parametrize("target", ["/\t/evil.example/", "/\n\\evil.example/"])
def test_the_page_asked_for_is_never_on_another_site(
        site: Site, provider: Provider, browser: Callable[[], Browser], target: str) -> None:
    # A browser drops tabs and newlines from a URL: "/<TAB>/evil.example" is
    # "//evil.example", and the page after the callback would lead there by itself.
    b = browser()
    b.page.route("http://evil.example/**", lambda route: route.fulfill(body="phished"))
    b.page.goto(site.url + "/login/oidc?" + urlencode({"next": target}))
    at_provider(b, "olga")
    b.page.wait_for_url(lambda url: not url.startswith((provider.issuer,
                                                        site.url + "/login")))
    assert b.page.url == site.url + "/"
    assert b.page.locator(".who").inner_text() == "olga"
    b.context.close()


def test_a_refusal_not_from_the_issuer_puts_no_words_on_the_page(site: Site) -> None:
    # A link anyone can make: the error page must not be theirs to write.
    lure = "Your account is locked: call +1 555 0100 to unlock it"
    answer = requests.get(site.url + "/login/oidc/callback",
                          params={"error": "access_denied", "error_description": lure},
                          timeout=30)
    assert answer.status_code == 401
    assert "state does not match" in answer.text
    assert "555" not in answer.text and "refused the sign-in" not in answer.text
    # Nor after the lure's maker started a sign-in in the victim's browser (a GET anyone
    # can make it send): the callback's state is not that sign-in's.
    browser = requests.Session()
    browser.get(site.url + "/login/oidc", allow_redirects=False, timeout=30)
    assert "ama_oidc" in browser.cookies
    answer = browser.get(site.url + "/login/oidc/callback",
                         params={"error": "access_denied", "error_description": lure},
                         timeout=30)
    assert answer.status_code == 401 and "555" not in answer.text
