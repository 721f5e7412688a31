"""Browser login with OpenID Connect against a real provider (oidc-provider-mock) and a real
``ama-server serve`` (gunicorn), all on 127.0.0.1.

The provider's sign-in page takes a form POST naming the subject, which is what a user's
click does; a test "browser" posts it and follows the redirect to ama's loopback callback.
"""

from __future__ import annotations

import os
import secrets
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from sqlalchemy import text

from ama.plumbing.errors import AmaError
from ama.plumbing.transport import Forbidden, HttpTransport, Unauthenticated
from ama.porcelain import auth
from ama_remote.db import Database
from ama_remote.errors import Unauthenticated as Refused
from ama_remote.oidc import IdTokenVerifier, OidcSettings, nonce_hash, user_for_email
from ama_remote.service import Service
from tests.services.oidc import Provider, serve_provider
from tests.services.server import run_ama_server, serving

CLIENT_ID = "ama-cli"
CLIENT_SECRET = "native-client-secret"
OPEN_DOMAIN = "open.example"


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    """The identity provider the server trusts."""
    yield from serve_provider(require_nonce=True)


@pytest.fixture(scope="module")
def stranger() -> Iterator[Provider]:
    """Another provider, with its own signing key."""
    yield from serve_provider()


@dataclass
class Server:
    url: str
    env: dict[str, str]

    def admin(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_ama_server(self.env, *args)


@pytest.fixture(scope="module")
def server(provider: Provider, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``ama-server serve`` trusting ``provider``, with open sign-up for OPEN_DOMAIN."""
    root = tmp_path_factory.mktemp("oidc-server")
    home = root / "home"
    storage = f"file://{root / 'storage'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMA_")}
    env.update(AMA_SERVER_HOME=str(home), AMA_DATABASE_URL=f"sqlite:///{root / 'ama.db'}")
    run_ama_server(env, "init", "--admin", "admin", "--email", "admin@example.org",
                   "--storage", storage)
    run_ama_server(env, "project", "add", "demo", "--storage", storage, "--no-check")
    with open(home / "server.toml", "a", encoding="utf-8") as f:
        f.write(f'oidc_issuer = "{provider.issuer}"\n'
                f'oidc_client_id = "{CLIENT_ID}"\n'
                f'oidc_client_secret = "{CLIENT_SECRET}"\n'
                f'open_signup_domains = ["{OPEN_DOMAIN}"]\n')
    log = root / "server.log"
    with serving(env, log) as running:
        yield Server(running.url, env)
    # No token or code from a login ever reaches the server's log.
    text = log.read_text(errors="replace")
    assert "ama_" not in text and "code=" not in text and "eyJ" not in text


def _browser(sub: str) -> Any:
    """A browser whose user signs in as ``sub`` and is sent back to the loopback callback."""

    def open_browser(url: str) -> bool:
        answer = requests.post(url, data={"sub": sub}, allow_redirects=False, timeout=10)
        assert answer.status_code == 302, answer.text
        requests.get(answer.headers["Location"], timeout=10).raise_for_status()
        return True

    return open_browser


def _user(prefix: str) -> str:
    return f"{prefix}{secrets.token_hex(3)}"


def _login(server: Server, sub: str) -> dict[str, Any]:
    shown: list[str] = []
    account = auth.browser_login(server.url, shown.append, open_browser=_browser(sub),
                                 timeout=30)
    assert shown and shown[0].startswith("http://127.0.0.1:")
    return account


# -- the whole login, through the installed command ------------------------------------------

BROWSER_SCRIPT = """\
import sys, requests
answer = requests.post(sys.argv[1], data={"sub": sys.argv[2]}, allow_redirects=False)
requests.get(answer.headers["Location"])
"""


def test_ama_auth_login_in_a_browser_then_info_token_and_logout(
        server: Server, provider: Provider, tmp_path: Path, clean_env: Path) -> None:
    name = _user("ada")
    email = f"{name}@example.org"
    provider.add_user(name, email)
    server.admin("user", "add", name, "--email", email)
    server.admin("project", "grant", "demo", name, "reader")
    script = tmp_path / "browser.py"
    script.write_text(BROWSER_SCRIPT)
    env = {**os.environ, "AMA_REMOTE": server.url,
           "BROWSER": f"{sys.executable} {script} %s {name}"}
    ama = str(Path(sys.executable).parent / "ama")

    done = subprocess.run([ama, "auth", "login"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"logged in to {server.url} as {name} ({email})" in done.stdout
    assert "  demo\treader" in done.stdout.splitlines()
    assert "Open this URL in a browser" in done.stderr and "code_challenge=" in done.stderr

    ama_home = Path(env["AMA_HOME"])
    credentials = ama_home / "credentials"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert stat.S_IMODE(ama_home.stat().st_mode) == 0o700
    token = subprocess.run([ama, "auth", "info", "--token"], env=env, capture_output=True,
                           text=True, timeout=60).stdout.strip()
    assert token.startswith("ama_") and token in credentials.read_text()
    assert HttpTransport(server.url, token=token).me()["username"] == name

    done = subprocess.run([ama, "auth", "logout"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    with pytest.raises(Unauthenticated):
        HttpTransport(server.url, token=token).me()
    done = subprocess.run([ama, "auth", "info"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 4 and "not logged in" in done.stderr


def test_a_token_printed_on_one_machine_logs_in_on_another(
        server: Server, tmp_path: Path) -> None:
    name = _user("hal")
    server.admin("user", "add", name, "--email", f"{name}@example.org")
    token = server.admin("token", "issue", name).stdout.strip()
    other = {**os.environ, "AMA_HOME": str(tmp_path / "other-machine")}

    account = auth.login_with_token(server.url, token, environ=other)

    assert account["username"] == name and account["projects"] == []
    assert auth.info(server.url, environ=other)["token"] == token
    with pytest.raises(Unauthenticated):
        auth.login_with_token(server.url, "ama_forged", environ=other)


def test_signup_waits_for_an_admin_unless_the_domain_is_open(server: Server,
                                                               provider: Provider) -> None:
    closed, opened = _user("cy"), _user("ola")
    assert auth.signup(server.url, closed, f"{closed}@example.org")["active"] is False
    assert auth.signup(server.url, opened, f"{opened}@{OPEN_DOMAIN}")["active"] is True

    # The inactive user proves their email but is refused until an admin activates them.
    provider.add_user(closed, f"{closed}@example.org")
    with pytest.raises(Forbidden) as refused:
        _login(server, closed)
    assert "not active" in refused.value.message
    assert f"ama-server user activate {closed}" in (refused.value.hint or "")
    server.admin("user", "activate", closed)
    assert _login(server, closed)["username"] == closed


def test_an_unknown_email_is_refused_unless_its_domain_is_open(server: Server,
                                                                 provider: Provider) -> None:
    stranger, newcomer = _user("eve"), _user("nia")
    provider.add_user(stranger, f"{stranger}@example.org")
    provider.add_user(newcomer, f"{newcomer}@{OPEN_DOMAIN}")

    with pytest.raises(Forbidden) as refused:
        _login(server, stranger)
    assert f"no user on this server has the email {stranger}@example.org" in \
        refused.value.message
    assert "ama auth signup" in (refused.value.hint or "")
    users = server.admin("user", "list").stdout
    assert stranger not in users

    account = _login(server, newcomer)
    assert account["username"] == newcomer and account["email"] == f"{newcomer}@{OPEN_DOMAIN}"
    assert f"{newcomer}\t{newcomer}@{OPEN_DOMAIN}\tactive\tuser" in \
        server.admin("user", "list").stdout


def test_an_email_address_names_one_user_whatever_its_case(server: Server,
                                                           provider: Provider) -> None:
    name = _user("uma")
    email = f"{name}@example.org"
    server.admin("user", "add", name, "--email", email)
    taken = requests.post(f"{server.url}/v1/auth/signup", timeout=30,
                          json={"username": _user("umb"), "email": email.upper()})
    assert taken.status_code == 409, taken.text
    assert f"the email address {email.upper()} is already registered" in \
        taken.json()["error"]["message"]
    added = run_ama_server(server.env, "user", "add", _user("umc"), "--email", email,
                           check=False)
    assert added.returncode == 1 and "already registered" in added.stderr

    provider.add_user(name, email.upper())  # the provider spells it in capitals
    assert _login(server, name)["username"] == name


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_first_logins_at_once_with_one_email_make_one_user(
        request: pytest.FixtureRequest, tmp_path: Path, database: str) -> None:
    url = (f"sqlite:///{tmp_path / 'ama.db'}" if database == "sqlite"
           else request.getfixturevalue("postgres_url"))
    db = Database(url)
    db.migrate()
    service = Service(db, open_signup_domains=(OPEN_DOMAIN,))
    logins = 8
    start = threading.Barrier(logins)
    names: list[str] = []
    errors: list[BaseException] = []

    def first_login(n: int) -> None:
        start.wait()
        try:  # the same person, in two browsers at once: the name may come spelt two ways
            names.append(user_for_email(service, f"Neo@{OPEN_DOMAIN}" if n % 2 else
                                        f"neo@{OPEN_DOMAIN}", {"preferred_username": "neo"}))
        except BaseException as e:  # noqa: BLE001 - every failure is reported
            errors.append(e)

    threads = [threading.Thread(target=first_login, args=(n,)) for n in range(logins)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    db.dispose()
    assert errors == []
    assert names == ["neo"] * logins
    users = service.list_users()
    assert [(u["username"], u["email"].lower(), u["active"]) for u in users] == \
        [("neo", f"neo@{OPEN_DOMAIN}", True)]


def test_migrating_users_who_share_an_email_stops_and_names_them(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'ama.db'}")
    db.migrate("0001")  # before emails were unique
    with db.engine.begin() as conn:
        for name, email in (("ann", "Ann@example.org"), ("bea", "ann@example.org")):
            conn.execute(text("INSERT INTO users (username, email, is_admin, active, created) "
                              "VALUES (:n, :e, false, true, '2026-11-27 16:00:00')"),
                         {"n": name, "e": email})
    with pytest.raises(AmaError) as refused:
        db.migrate()
    assert "ann@example.org: ann, bea" in refused.value.message
    assert "ama-server migrate" in (refused.value.hint or "")
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE users SET email = 'bea@example.org' WHERE username = 'bea'"))
    db.migrate()
    assert Service(db).user_by_email("ANN@example.org")["username"] == "ann"
    db.dispose()


def test_an_email_the_issuer_has_not_verified_is_refused(server: Server,
                                                         provider: Provider) -> None:
    name = _user("ivy")
    provider.add_user(name, f"{name}@{OPEN_DOMAIN}", verified=False)
    with pytest.raises(Forbidden) as refused:
        _login(server, name)
    assert "has not verified the email" in refused.value.message
    assert name not in server.admin("user", "list").stdout


def test_a_server_without_browser_login_says_how_to_log_in(start_ama_server: Any) -> None:
    plain = start_ama_server()
    with pytest.raises(AmaError) as refused:
        auth.browser_login(plain.url, print, open_browser=_browser("x"), timeout=5)
    assert refused.value.exit_code == 3
    assert "no browser login" in refused.value.message
    assert "ama auth login --token" in (refused.value.hint or "")


# -- ID tokens the server must refuse --------------------------------------------------------

def _id_token(provider: Provider, sub: str, nonce: str, client_id: str = CLIENT_ID,
              host: str | None = None) -> str:
    """Run the code flow by hand and return the ID token. ``host`` is the Host header of
    the token request, which is the issuer the provider writes into the token."""
    metadata = provider.metadata()
    redirect = "http://127.0.0.1:9/callback"  # never contacted: the code is read from Location
    session = OAuth2Session(client_id, CLIENT_SECRET, scope="openid email",
                            redirect_uri=redirect, code_challenge_method="S256")
    verifier = generate_token(64)
    url, _state = session.create_authorization_url(metadata["authorization_endpoint"],
                                                   code_verifier=verifier, nonce=nonce)
    answer = requests.post(url, data={"sub": sub}, allow_redirects=False, timeout=10)
    code = answer.headers["Location"].split("code=")[1].split("&")[0]
    headers = {"Host": host} if host else {}
    tokens = requests.post(metadata["token_endpoint"], headers=headers, timeout=10, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
        "client_id": client_id, "client_secret": CLIENT_SECRET, "code_verifier": verifier})
    tokens.raise_for_status()
    token: str = tokens.json()["id_token"]
    return token


def _present(server: Server, id_token: str, raw_nonce: str) -> requests.Response:
    return requests.post(f"{server.url}/v1/auth/token", timeout=30, json={
        "grant_type": "oidc", "id_token": id_token, "nonce": raw_nonce})


@pytest.fixture
def known_user(server: Server, provider: Provider) -> str:
    name = _user("kim")
    provider.add_user(name, f"{name}@example.org")
    server.admin("user", "add", name, "--email", f"{name}@example.org")
    return name


def test_the_server_accepts_a_good_id_token(server: Server, provider: Provider,
                                            known_user: str) -> None:
    raw = secrets.token_urlsafe(32)
    answer = _present(server, _id_token(provider, known_user, nonce_hash(raw)), raw)
    assert answer.status_code == 201, answer.text
    assert answer.json()["username"] == known_user
    token = answer.json()["token"]
    assert HttpTransport(server.url, token=token).me()["username"] == known_user


@pytest.mark.parametrize("case, expected", [
    ("audience", "not for this server's client"),
    ("nonce", "nonce does not match"),
    ("issuer", "the issuer this server trusts"),
    ("signature", "signature does not match"),
    ("garbage", "cannot be read"),
])
def test_the_server_refuses_a_bad_id_token(server: Server, provider: Provider,
                                           stranger: Provider, known_user: str,
                                           case: str, expected: str) -> None:
    raw = secrets.token_urlsafe(32)
    nonce = nonce_hash(raw)
    if case == "audience":
        id_token = _id_token(provider, known_user, nonce, client_id="another-app")
    elif case == "nonce":
        id_token = _id_token(provider, known_user, nonce)
        raw = secrets.token_urlsafe(32)  # not the secret behind the token's nonce
    elif case == "issuer":
        # Signed with the trusted key, but naming another issuer: http://localhost:PORT
        # (the provider names itself after the Host header; the connection is to 127.0.0.1).
        id_token = _id_token(provider, known_user, nonce, host=f"localhost:{provider.port}")
    elif case == "signature":
        stranger.add_user(known_user, f"{known_user}@example.org")
        id_token = _id_token(stranger, known_user, nonce)
    else:
        id_token = "not.a.jwt"

    answer = _present(server, id_token, raw)

    assert answer.status_code == 401, answer.text
    error = answer.json()["error"]
    assert error["code"] == "unauthenticated"
    assert expected in error["message"]
    assert error["hint"] == "run 'ama auth login' again"


def test_the_server_refuses_an_id_token_with_its_nonce_for_a_secret(
        server: Server, provider: Provider, known_user: str) -> None:
    # A token's own nonce is public: presenting it as the secret proves nothing.
    nonce = nonce_hash(secrets.token_urlsafe(32))
    answer = _present(server, _id_token(provider, known_user, nonce), nonce)
    assert answer.status_code == 401
    assert "nonce does not match" in answer.json()["error"]["message"]


@pytest.mark.parametrize("later, expected", [
    (timedelta(hours=2), "the ID token has expired"),
    (timedelta(minutes=20), "issued more than 15 minutes ago"),
])
def test_an_expired_or_stale_id_token_is_refused(provider: Provider, known_user: str,
                                                 later: timedelta, expected: str) -> None:
    raw = secrets.token_urlsafe(32)
    id_token = _id_token(provider, known_user, nonce_hash(raw))
    settings = OidcSettings(provider.issuer, CLIENT_ID)
    assert IdTokenVerifier(settings).verify(id_token, raw)["sub"] == known_user
    future = IdTokenVerifier(settings, clock=lambda: time.time() + later.total_seconds())
    with pytest.raises(Refused) as refused:
        future.verify(id_token, raw)
    assert expected in refused.value.message
