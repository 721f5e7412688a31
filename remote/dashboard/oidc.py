"""Signing in to the dashboard with the server's OpenID Connect issuer.

The authorization code flow with PKCE (S256), run by authlib: ``GET /login/oidc`` sends
the browser to the issuer with a ``state``, a code challenge and a ``nonce``; the issuer
sends it back to ``GET /login/oidc/callback`` with a code, which the server exchanges (with
the code verifier, and the client secret when there is one) for an ID token. That token is
verified by the same :class:`~ama_remote.oidc.IdTokenVerifier` as the CLI's login (issuer,
audience, signature, expiry, nonce) and names the user by the same rule
(:meth:`~ama_remote.oidc.OidcLogin.account`); the browser then gets the usual session.

The state, the nonce's secret and the code verifier live in a short-lived pre-login cookie
of this browser only, and the cookie is spent by the callback: a callback whose state is
not the cookie's (a link another site made, to sign the victim in as someone else) or that
comes a second time is refused. That cookie is SameSite=Lax, not Strict: it must come back
with the issuer's redirect, a navigation from another site. For the same reason the
callback answers with a page that moves on by itself rather than with a redirect: a Strict
session cookie is not sent on a navigation that another site started.
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import falcon
import requests

from ama.plumbing.errors import NotFound
from ama_remote.dashboard.pages import (
    SESSION_COOKIE,
    SESSION_TTL,
    Page,
    _Request,
    cookie_name,
    drop_cookie,
    href,
    set_cookie,
)
from ama_remote.dashboard.views import _safe_next
from ama_remote.errors import Unauthenticated
from ama_remote.oidc import IdTokenVerifier, IssuerUnreachable, OidcLogin, OidcSettings, nonce_hash

CALLBACK = "/login/oidc/callback"
PRELOGIN_COOKIE = "ama_oidc"
# Long enough to sign in at the issuer (a password, a second factor), short enough that a
# forgotten tab holds nothing for long.
PRELOGIN_TTL = 600
AGAIN = "start again from the sign-in page"


def issuer_name(issuer: str) -> str:
    """What the sign-in button calls the issuer: its host (accounts.google.com)."""
    return urlsplit(issuer).netloc or issuer


@dataclass(frozen=True)
class Pending:
    """A sign-in under way: what the callback must find again."""

    state: str
    nonce: str  # the secret whose hash went to the issuer as the nonce
    verifier: str  # PKCE's code verifier
    next: str

    def encode(self) -> str:
        data = json.dumps([self.state, self.nonce, self.verifier, self.next]).encode()
        return base64.urlsafe_b64encode(data).decode("ascii")

    @classmethod
    def decode(cls, value: str | None) -> Pending | None:
        """The pending sign-in in a cookie's ``value``, or None for none or a damaged one."""
        try:
            state, nonce, verifier, next_page = json.loads(base64.urlsafe_b64decode(
                (value or "").encode("ascii")))
        except (ValueError, TypeError):
            return None
        if not all(isinstance(v, str) for v in (state, nonce, verifier, next_page)):
            return None
        return cls(state, nonce, verifier, next_page)


class _OidcPage(Page):
    needs_login = False

    def _oidc(self) -> tuple[OidcLogin, OidcSettings, IdTokenVerifier]:
        login = self.dash.oidc
        if login is None or login.settings is None or login.verifier is None:
            raise NotFound("this server has no OpenID Connect sign-in",
                           "sign in with a token: 'ama auth info --token' prints yours")
        return login, login.settings, login.verifier

    @staticmethod
    def _endpoint(verifier: IdTokenVerifier, key: str) -> str:
        url = verifier.metadata().get(key)
        if not isinstance(url, str):
            raise IssuerUnreachable(f"the OpenID configuration of {verifier.settings.issuer} "
                                    f"has no {key}")
        return url

    @staticmethod
    def _client(settings: OidcSettings, req: falcon.Request) -> Any:
        from authlib.integrations.requests_client import OAuth2Session

        # The address the browser used (forwarded_prefix: behind a proxy that says so); the
        # issuer accepts it only if it is registered for the client, so a forged Host
        # header leads nowhere.
        return OAuth2Session(
            settings.client_id, settings.client_secret, scope=settings.scopes,
            redirect_uri=req.forwarded_prefix + CALLBACK, code_challenge_method="S256",
            token_endpoint_auth_method=("client_secret_post" if settings.client_secret
                                        else "none"))


class Start(_OidcPage):
    """Send the browser to the issuer, remembering the sign-in in the pre-login cookie."""

    def get(self, request: _Request, resp: falcon.Response) -> None:
        from authlib.common.security import generate_token

        _, settings, verifier = self._oidc()
        endpoint = self._endpoint(verifier, "authorization_endpoint")
        pending = Pending(state=generate_token(32), nonce=secrets.token_urlsafe(32),
                          verifier=generate_token(64), next=_safe_next(request.param("next")))
        url, _state = self._client(settings, request.req).create_authorization_url(
            endpoint, state=pending.state, code_verifier=pending.verifier,
            nonce=nonce_hash(pending.nonce))
        set_cookie(request.req, resp, PRELOGIN_COOKIE, pending.encode(), PRELOGIN_TTL,
                   same_site="Lax", path=href("login", "oidc"))
        self.redirect(url)


class Callback(_OidcPage):
    """Where the issuer sends the browser back: the code becomes a session."""

    def get(self, request: _Request, resp: falcon.Response) -> None:
        login, settings, verifier = self._oidc()
        issuer = issuer_name(settings.issuer)
        pending = Pending.decode(request.req.cookies.get(cookie_name(request.req,
                                                                     PRELOGIN_COOKIE)))
        # Spent whatever happens next: a callback answers once.
        drop_cookie(request.req, resp, PRELOGIN_COOKIE, same_site="Lax",
                    path=href("login", "oidc"))
        state = request.param("state")
        started = pending is not None and state is not None and hmac.compare_digest(
            state.encode(), pending.state.encode())
        refusal = request.param("error")
        # A refusal's words go on the page only for the sign-in under way in this browser,
        # its state matching: a link anyone makes with an error_description would
        # otherwise write on this site's page (and anyone can start a sign-in for the
        # browser). Some issuers send no state with a refusal: then only its error code
        # (RFC 6749's words, such as access_denied), in which no lure can be written.
        if refusal and pending is not None and (started or state is None):
            reason = (request.param("error_description") or refusal) if started else (
                refusal if re.fullmatch(r"[a-z_]{1,40}", refusal) else "an error")
            raise Unauthenticated(f"{issuer} refused the sign-in: {reason[:200]}", AGAIN)
        if not started:
            raise Unauthenticated(
                "this sign-in was not started in this browser, or was finished already "
                "(its state does not match)", AGAIN)
        assert pending is not None
        code = request.param("code")
        if not code:
            raise Unauthenticated(f"{issuer} sent no authorization code", AGAIN)
        id_token = self._exchange(settings, verifier, request.req, code, pending)
        username = login.account(verifier.verify(id_token, pending.nonce))
        session = self.service.issue_token(username, ttl=SESSION_TTL)
        set_cookie(request.req, resp, SESSION_COOKIE, session, SESSION_TTL)
        request.caller = self.service.authenticate(session)
        request.session = session
        # Checked again: the cookie that carried it is the browser's, which a neighbour
        # site of the same domain may have written.
        self.dash.render(resp, "signed_in.html", request, next=_safe_next(pending.next))

    def _exchange(self, settings: OidcSettings, verifier: IdTokenVerifier,
                  req: falcon.Request, code: str, pending: Pending) -> str:
        from authlib.common.errors import AuthlibBaseError

        endpoint = self._endpoint(verifier, "token_endpoint")
        issuer = issuer_name(settings.issuer)
        try:
            tokens = self._client(settings, req).fetch_token(
                endpoint, grant_type="authorization_code", code=code,
                code_verifier=pending.verifier)
        except AuthlibBaseError as e:
            raise Unauthenticated(f"{issuer} did not complete the sign-in: "
                                  f"{e.description or e.error}", AGAIN) from None
        except (requests.RequestException, ValueError) as e:
            raise IssuerUnreachable(f"cannot reach {endpoint}: {e}",
                                    "try again later; if it persists, tell the server's "
                                    "administrator") from None
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise Unauthenticated(f"{issuer} sent no ID token",
                                  "ask the server's administrator to include 'openid' in "
                                  "oidc_scopes")
        return id_token
