"""OpenID Connect login: the server's side of ``ama auth login`` (docs/design.md §4, Auth).

The design is the native-app pattern of RFC 8252, with the ama server as the party that
decides who someone is:

1. ``GET /v1/auth/oidc`` (public) tells the CLI what it needs: the issuer, the client id,
   the client secret when the provider issued one to this (native, desktop) client, and the
   scopes. Google is the default issuer; any issuer is configured in ``server.toml``::

       oidc_issuer = "https://accounts.google.com"
       oidc_client_id = "1234-abc.apps.googleusercontent.com"
       oidc_client_secret = "GOCSPX-…"   # only for providers that want one from native apps
       oidc_scopes = "openid email profile"

   A native client's secret is not a secret (it ships in every copy of the CLI), so
   publishing it gives nothing away; never put a confidential web client's secret here.
2. The CLI discovers the issuer's endpoints, runs a one-shot HTTP server on 127.0.0.1 on a
   random port and opens the browser at the authorization endpoint with PKCE (S256),
   ``state``, ``redirect_uri=http://127.0.0.1:PORT/callback`` and ``nonce`` =
   base64url(SHA-256(``raw``)), where ``raw`` is a random secret it keeps. It receives the
   code on the loopback server and exchanges it, with its code verifier, for an ID token.
   The code exchange stays in the CLI: the server keeps no per-login state, so any number of
   servers behind one name serve a login.
3. ``POST /v1/auth/token {"grant_type": "oidc", "id_token", "nonce": raw}``: the server
   verifies the ID token (:class:`IdTokenVerifier`): the signature against the issuer's JWKS
   (discovered, cached, fetched again once for an unknown key id), ``iss``, ``aud`` (and
   ``azp`` when there are several audiences), ``exp``, ``iat`` and ``nonce`` equal to
   base64url(SHA-256(raw)). An ID token copied from elsewhere carries only the hash of the
   nonce, so it is worthless without the secret that never left the CLI.
4. The verified email (``email_verified`` must be true) names the user
   (:func:`user_for_email`): the user with that email (emails are unique, whatever their
   case); none, and the email's domain
   is open for sign-up (``open_signup_domains``), a new active user; otherwise the login is
   refused, as it is for an inactive user, saying what to do. The server then issues an
   ordinary ama token.

The web dashboard signs in with the same settings (:mod:`ama_remote.dashboard.oidc`): there
the server runs the code exchange itself, with the redirect URI
``https://SERVER/login/oidc/callback``, which must be registered for the client at the
provider; the ID token is verified and mapped to a user by the same code as above.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidClaimError,
    InvalidKeyIdError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwk import KeySet

from ama.plumbing import wire
from ama.plumbing.errors import UNREACHABLE, AmaError, BadInput, NotFound
from ama_remote.errors import Conflict, Forbidden, Unauthenticated

GOOGLE = "https://accounts.google.com"
DEFAULT_SCOPES = "openid email profile"
GRANT_TYPE = "oidc"
# Seconds of clock difference tolerated between the issuer and this server.
LEEWAY = 60
# An ID token older than this is refused even if it has not expired: a login is minutes.
MAX_AGE = 15 * 60
# Discovery documents and key sets are kept this long before being fetched again.
CACHE_SECONDS = 3600
HTTP_TIMEOUT = 10.0
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]

LOGIN_HINT = "run 'ama auth login' again"


class IssuerUnreachable(AmaError):
    """The OpenID provider's discovery document or keys cannot be fetched."""

    exit_code = UNREACHABLE
    http_status = 502


def nonce_hash(raw: str) -> str:
    """Return the ``nonce`` to send to the provider for the secret ``raw``:
    base64url(SHA-256(raw)) without padding."""
    digest = hashlib.sha256(raw.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class OidcSettings:
    """Which provider this server trusts, and the client the CLI logs in as."""

    issuer: str
    client_id: str
    client_secret: str | None = None
    scopes: str = DEFAULT_SCOPES

    @classmethod
    def from_config(cls, config: Any) -> OidcSettings | None:
        """Return the settings in a :class:`~ama_remote.config.ServerConfig`, or None when
        no client id is configured (browser login is off)."""
        client_id = getattr(config, "oidc_client_id", None)
        if not client_id:
            return None
        return cls(issuer=(getattr(config, "oidc_issuer", None) or GOOGLE).rstrip("/"),
                   client_id=client_id,
                   client_secret=getattr(config, "oidc_client_secret", None) or None,
                   scopes=getattr(config, "oidc_scopes", None) or DEFAULT_SCOPES)

    def public(self) -> wire.LoginSettings:
        """What ``GET /v1/auth/oidc`` answers."""
        answer: wire.LoginSettings = {"issuer": self.issuer, "client_id": self.client_id,
                                  "scopes": self.scopes, "grant_type": GRANT_TYPE}
        if self.client_secret:
            answer["client_secret"] = self.client_secret
        return answer


class IdTokenVerifier:
    """Verify ID tokens from one issuer for one client.

    ``http`` fetches the discovery document and the key set (a ``requests.Session``);
    ``clock`` returns the time in seconds since the epoch. Both are injectable for tests.
    """

    def __init__(self, settings: OidcSettings, http: requests.Session | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.http = http or requests.Session()
        self.clock = clock
        self._lock = threading.Lock()
        self._keys: KeySet | None = None
        self._keys_fetched = 0.0
        self._metadata: wire.JSONObject | None = None
        self._metadata_fetched = 0.0

    # -- fetching the issuer's documents --

    def _get_json(self, url: str, what: str) -> wire.JSONObject:
        try:
            response = self.http.get(url, timeout=HTTP_TIMEOUT)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as e:
            raise IssuerUnreachable(f"cannot fetch the {what} of {self.settings.issuer} "
                                    f"from {url}: {e}",
                                    "try again later; if it persists, tell the server's "
                                    "administrator") from None
        if not isinstance(data, dict):
            raise IssuerUnreachable(f"the {what} at {url} is not a JSON object")
        return data

    def metadata(self) -> wire.JSONObject:
        """Return the issuer's discovery document (``/.well-known/openid-configuration``)."""
        with self._lock:
            if self._metadata is None or self.clock() - self._metadata_fetched > CACHE_SECONDS:
                url = self.settings.issuer + "/.well-known/openid-configuration"
                data = self._get_json(url, "OpenID configuration")
                if data.get("issuer", "").rstrip("/") != self.settings.issuer:
                    raise IssuerUnreachable(
                        f"the OpenID configuration at {url} names the issuer "
                        f"{data.get('issuer')!r}, not {self.settings.issuer!r}",
                        "set oidc_issuer in server.toml to the provider's issuer URL")
                self._metadata = data
                self._metadata_fetched = self.clock()
            return self._metadata

    def _key_set(self, refresh: bool = False) -> KeySet:
        metadata = self.metadata()
        with self._lock:
            stale = self.clock() - self._keys_fetched > CACHE_SECONDS
            if self._keys is None or refresh or stale:
                jwks_uri = metadata.get("jwks_uri")
                if not isinstance(jwks_uri, str):
                    raise IssuerUnreachable(f"the OpenID configuration of "
                                            f"{self.settings.issuer} has no jwks_uri")
                keys: Any = self._get_json(jwks_uri, "signing keys")
                try:
                    self._keys = KeySet.import_key_set(keys)
                except (JoseError, KeyError, TypeError, ValueError) as e:
                    raise IssuerUnreachable(f"the signing keys at {jwks_uri} cannot be "
                                            f"read: {e}") from None
                self._keys_fetched = self.clock()
            return self._keys

    # -- verifying --

    def verify(self, id_token: str, raw_nonce: str) -> wire.JSONObject:
        """Return the claims of ``id_token`` once its signature, issuer, audience, expiry,
        age and nonce are checked; raises :class:`Unauthenticated` naming what failed."""
        try:
            token = self._decode(id_token)
        except (BadSignatureError, InvalidKeyIdError):
            raise Unauthenticated("the ID token's signature does not match the keys of "
                                  f"{self.settings.issuer}", LOGIN_HINT) from None
        except JoseError as e:
            raise Unauthenticated(f"the ID token cannot be read: {e.description or e.error}",
                                  LOGIN_HINT) from None
        claims = dict(token.claims)
        expected_nonce = nonce_hash(raw_nonce)
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(self.clock()), leeway=LEEWAY,
            iss={"essential": True, "value": self.settings.issuer},
            sub={"essential": True},
            aud={"essential": True, "value": self.settings.client_id},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": expected_nonce},
        )
        issuer = claims.get("iss")
        if isinstance(issuer, str) and issuer.rstrip("/") == self.settings.issuer:
            claims_to_check = {**claims, "iss": self.settings.issuer}
        else:
            claims_to_check = claims
        try:
            registry.validate(claims_to_check)
        except ExpiredTokenError:
            raise Unauthenticated("the ID token has expired", LOGIN_HINT) from None
        except (InvalidClaimError, MissingClaimError) as e:
            raise Unauthenticated(_claim_problem(e.claim, claims, self.settings,
                                                 expected_nonce), LOGIN_HINT) from None
        except ClaimError as e:
            raise Unauthenticated(f"the ID token was refused: {e.description}",
                                  LOGIN_HINT) from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise Unauthenticated("the ID token was issued to another client (azp)",
                                  LOGIN_HINT)
        if int(self.clock()) - int(claims["iat"]) > MAX_AGE + LEEWAY:
            raise Unauthenticated(f"the ID token was issued more than {MAX_AGE // 60} minutes "
                                  "ago", LOGIN_HINT)
        return claims

    def _decode(self, id_token: str) -> Any:
        try:
            return jwt.decode(id_token, self._key_set(), algorithms=ALGORITHMS)
        except InvalidKeyIdError:
            # The issuer may have rotated its keys since we fetched them: fetch once more.
            return jwt.decode(id_token, self._key_set(refresh=True), algorithms=ALGORITHMS)


def _claim_problem(claim: str, claims: Mapping[str, Any], settings: OidcSettings,
                   expected_nonce: str) -> str:
    if claim == "iss":
        return (f"the ID token was issued by {claims.get('iss')!r}, not by "
                f"{settings.issuer!r}, the issuer this server trusts")
    if claim == "aud":
        return (f"the ID token is meant for {claims.get('aud')!r}, not for this server's "
                f"client {settings.client_id!r}")
    if claim == "nonce":
        return ("the ID token's nonce does not match this login" if "nonce" in claims
                else "the ID token carries no nonce")
    if claim in ("iat", "nbf"):
        return f"the ID token's {claim} claim is missing or in the future"
    return f"the ID token's {claim} claim is missing or invalid"


# -- from a verified email to a user ---------------------------------------------------------

_NAME_CHARS = re.compile(r"[^a-z0-9._-]+")


def _candidate_names(claims: Mapping[str, Any], email: str) -> list[str]:
    base = str(claims.get("preferred_username") or email.partition("@")[0]).lower()
    base = _NAME_CHARS.sub("-", base).strip("-.") or "user"
    return [base, *(f"{base}{n}" for n in range(2, 100))]


def user_for_email(service: Any, email: str, claims: Mapping[str, Any] | None = None) -> str:
    """Return the username of the active user whose email is ``email``, creating one when
    the email's domain is open for sign-up.

    Two first logins with one email at once make one user: the second sign-up finds the
    address taken and returns the user the first one made. Raises :class:`Forbidden` when
    no user has this email and the domain is not open, or when the user is not active.
    """
    try:
        return _active(service.user_by_email(email), email)
    except NotFound:
        pass
    domain = email.rpartition("@")[2].lower()
    if domain not in service.open_signup_domains:
        raise Forbidden(f"no user on this server has the email {email}",
                        f"sign up with 'ama auth signup -u NAME -e {email}', then ask a "
                        "server admin to activate you")
    for name in _candidate_names(claims or {}, email):
        try:
            service.signup(name, email)
        except Conflict:
            try:  # the name is someone else's, or a login at the same time took the email
                return _active(service.user_by_email(email), email)
            except NotFound:
                continue
        return name
    raise Forbidden(f"cannot find a free user name for {email}",
                    f"sign up with 'ama auth signup -u NAME -e {email}'")


def _active(user: Mapping[str, Any], email: str) -> str:
    username = str(user["username"])
    if not user["active"]:
        raise Forbidden(f"user {username!r} ({email}) is not active on this server",
                        f"ask a server admin to run 'ama-server user activate {username}'")
    return username


# -- the HTTP side ---------------------------------------------------------------------------

class OidcLogin:
    """The ``oidc`` grant of ``POST /v1/auth/token`` and the public ``GET /v1/auth/oidc``."""

    public = True  # read by the app's auth middleware: no token needed

    def __init__(self, service: Any, settings: OidcSettings | None,
                 verifier: IdTokenVerifier | None = None) -> None:
        self.service = service
        self.settings = settings
        self.verifier = verifier or (IdTokenVerifier(settings) if settings else None)

    def _require(self) -> tuple[OidcSettings, IdTokenVerifier]:
        if self.settings is None or self.verifier is None:
            raise NotFound("this server has no browser login (OpenID Connect is not "
                           "configured)",
                           "log in with a token from a server admin: 'ama auth login --token "
                           "TOKEN'")
        return self.settings, self.verifier

    def on_get(self, req: Any, resp: Any) -> None:
        settings, _ = self._require()
        resp.media = settings.public()

    def grant(self, body: Mapping[str, Any]) -> str:
        """Return the username proved by ``body``'s ``id_token`` and ``nonce``."""
        _, verifier = self._require()
        id_token, raw_nonce = body.get("id_token"), body.get("nonce")
        if not isinstance(id_token, str) or not id_token:
            raise BadInput("field 'id_token' is required and must be a string")
        if not isinstance(raw_nonce, str) or not raw_nonce:
            raise BadInput("field 'nonce' is required and must be a string")
        return self.account(verifier.verify(id_token, raw_nonce))

    def account(self, claims: Mapping[str, Any]) -> str:
        """Return the username of the verified ID token ``claims``: the user with its
        verified email (see :func:`user_for_email`); the CLI's login and the dashboard's
        sign-in both go through here, so one rule decides who someone is."""
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise Forbidden(f"the issuer {claims['iss']} did not share an email address",
                            "log in again and allow the 'email' scope")
        if claims.get("email_verified") is not True:
            raise Forbidden(f"the issuer {claims['iss']} has not verified the email {email}",
                            "verify the address with your identity provider, then log in "
                            "again")
        return user_for_email(self.service, email, claims)


def login_grants(service: Any, config: Any) -> tuple[OidcLogin, dict[str, Callable[..., str]]]:
    """Return the ``GET /v1/auth/oidc`` resource and the login grants for ``config``."""
    login = OidcLogin(service, OidcSettings.from_config(config))
    return login, ({GRANT_TYPE: login.grant} if login.settings else {})


__all__ = ["GRANT_TYPE", "IdTokenVerifier", "IssuerUnreachable", "OidcLogin", "OidcSettings",
           "login_grants", "nonce_hash", "user_for_email"]
