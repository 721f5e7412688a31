"""Users and their tokens: sign-up, administration, issuing, authenticating, revoking.

Tokens are stored only as hashes; a token authenticates an active user until it expires or
is revoked.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ama.plumbing import wire
from ama_remote.errors import BadInput, Conflict, NotFound, Unauthenticated
from ama_remote.models import Token, User
from ama_remote.service.common import Caller, ServiceBase, _stamp


class Accounts(ServiceBase):
    """Users and their tokens: sign-up, administration, issuing, authenticating, revoking."""

    @staticmethod
    def _user_dict(user: User) -> wire.User:
        return {"username": user.username, "email": user.email, "admin": user.is_admin,
                "active": user.active, "created": _stamp(user.created)}

    def signup(self, username: str, email: str) -> wire.User:
        """Create a user; active at once when the email's domain is open for signup.

        Returns the user; raises BadInput (bad name or email) or Conflict (the name or the
        email address is taken).
        """
        domain = email.rpartition("@")[2].lower()
        return self.add_user(username, email, admin=False,
                             active=domain in self.open_signup_domains)

    def add_user(self, username: str, email: str, admin: bool = False,
                 active: bool = True) -> wire.User:
        """Create a user and return it; raises BadInput, or Conflict when the name or the
        email address (compared without regard to case) belongs to another user."""
        if not (1 <= len(username) <= 128) or not username.isprintable() or " " in username:
            raise BadInput(f"invalid user name {username!r}: use 1 to 128 printable characters "
                           "without spaces")
        if "@" not in email or len(email) > 320:
            raise BadInput(f"invalid email address {email!r}")

        def work(s: Session) -> wire.User:
            if s.scalars(select(User).where(User.username == username)).first():
                raise Conflict(f"user {username!r} already exists",
                               "choose another name, or run 'ama-server user list'")
            if s.scalars(select(User).where(func.lower(User.email) == email.lower())).first():
                raise Conflict(f"the email address {email} is already registered on this "
                               "server", "log in with 'ama auth login', or sign up with "
                               "another address")
            user = User(username=username, email=email, is_admin=admin, active=active,
                        created=self._now())
            s.add(user)
            s.flush()
            return self._user_dict(user)

        return self.db.run(work)

    def user_by_email(self, email: str) -> wire.User:
        """Return the user whose email address is ``email``, compared without regard to
        case; raises NotFound."""
        with self.db.read() as s:
            user = s.scalars(select(User).where(func.lower(User.email) == email.lower())
                             ).first()
            if user is None:
                raise NotFound(f"no user on this server has the email address {email}",
                               "run 'ama-server user list' to see every user")
            return self._user_dict(user)

    def list_users(self) -> list[wire.User]:
        """Return every user, by name."""
        with self.db.read() as s:
            return [self._user_dict(u)
                    for u in s.scalars(select(User).order_by(User.username))]

    def _set_active(self, username: str, active: bool) -> None:
        def work(s: Session) -> None:
            user = self._user(s, username)
            if user.active != active:
                self._audit_admin(s, None, "user.activate" if active else "user.disable",
                                  username, old=user.active, new=active)
            user.active = active

        self.db.run(work)

    def activate_user(self, username: str) -> None:
        """Let ``username`` sign in again; raises NotFound."""
        self._set_active(username, True)

    def disable_user(self, username: str) -> None:
        """Refuse every token of ``username`` from now on; raises NotFound."""
        self._set_active(username, False)

    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode("utf-8")).hexdigest()

    def issue_token(self, username: str, ttl: int | None = None) -> str:
        """Return a new token for ``username`` (its text is never stored: only its hash)."""
        raw = self._token_bytes(32)
        token = "ama_" + base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
        lifetime = self.token_ttl if ttl is None else ttl
        if lifetime <= 0:
            raise BadInput(f"a token's lifetime must be positive, not {lifetime} seconds")

        def work(s: Session) -> None:
            user = self._user(s, username)
            now = self._now()
            s.add(Token(user_id=user.id, token_hash=self._token_hash(token), created=now,
                        expires=now + timedelta(seconds=lifetime)))

        self.db.run(work)
        return token

    def authenticate(self, token: str | None) -> Caller:
        """Return who holds ``token``; raises Unauthenticated when it is missing, unknown,
        expired or revoked, or its user is disabled."""
        login = "run 'ama auth login' to get a new token"
        if not token:
            raise Unauthenticated("no token was given", login)
        with self.db.read() as s:
            row = s.execute(select(Token, User).join(User, Token.user_id == User.id)
                            .where(Token.token_hash == self._token_hash(token))).first()
            if row is None:
                raise Unauthenticated("the token is not valid", login)
            tok, user = row
            if tok.revoked is not None:
                raise Unauthenticated(f"the token was revoked on {_stamp(tok.revoked)}", login)
            if tok.expires <= self._now():
                raise Unauthenticated(f"the token expired on {_stamp(tok.expires)}", login)
            if not user.active:
                raise Unauthenticated(
                    f"user {user.username!r} is disabled",
                    f"ask a server admin to run 'ama-server user activate {user.username}'")
            return Caller(user_id=user.id, username=user.username, is_admin=user.is_admin)

    def rotate_token(self, token: str) -> tuple[str, str]:
        """Exchange ``token`` (valid) for a new token of its user, which it stops being:
        ``(new token, username)``. The new one lives as long as the old one was made to
        (a dashboard session's 12 hours stay 12 hours): a stolen session cookie is not
        made a token of a month."""
        caller = self.authenticate(token)
        with self.db.read() as s:
            row = s.scalars(select(Token).where(Token.token_hash == self._token_hash(token))
                            ).first()
            lifetime = None if row is None or row.expires is None else \
                max(1, int((row.expires - row.created).total_seconds()))
        new = self.issue_token(caller.username, ttl=None if lifetime is None else
                               min(lifetime, self.token_ttl))
        self.revoke_token(token)
        return new, caller.username

    def revoke_token(self, token: str) -> None:
        """Revoke ``token`` (an unknown or already revoked token is left as it is)."""
        def work(s: Session) -> None:
            tok = s.scalars(select(Token).where(Token.token_hash == self._token_hash(token))
                            ).first()
            if tok is not None and tok.revoked is None:
                tok.revoked = self._now()

        self.db.run(work)

    def me(self, caller: Caller) -> wire.Me:
        """Return the caller's name, email and the projects they can use with their role."""
        with self.db.read() as s:
            user = s.get(User, caller.user_id)
            if user is None:
                raise Unauthenticated("the token's user no longer exists",
                                      "run 'ama auth login'")
            return {"username": user.username, "email": user.email, "admin": user.is_admin,
                    "projects": self._projects_of(s, caller)}
