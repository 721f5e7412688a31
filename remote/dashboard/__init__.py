"""The web dashboard: server-rendered pages over the service layer, served at ``/``.

``add_dashboard(app, service)`` adds the pages to a Falcon app: ``ama-server serve`` puts
them beside the ``/v1`` API, ``ama dashboard`` serves them alone for the embedded remote.
Pages call the :class:`~ama_remote.service.Service` only, as the signed-in user, so every
page answers with the same role checks as the API. They read without JavaScript; templates
and the stylesheet ship inside this package, so the dashboard works offline.

A session is a token of its own, issued at sign-in and kept in an HttpOnly, SameSite=Strict
cookie (Secure under TLS); signing out revokes it. One signs in with a pasted token or with
the server's OpenID Connect issuer (:mod:`ama_remote.dashboard.oidc`). Every form that
changes something carries a CSRF token derived from the session, and every answer forbids
inline scripts and styles (Content-Security-Policy without ``unsafe-inline``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ama_remote.dashboard.pages import Dashboard, OneTimeLogin

if TYPE_CHECKING:
    from ama_remote.oidc import OidcLogin

__all__ = ["Dashboard", "OneTimeLogin", "add_dashboard"]


def add_dashboard(app: Any, service: Any, one_time: OneTimeLogin | None = None,
                  oidc: OidcLogin | None = None) -> Dashboard:
    """Add the dashboard's pages to the Falcon ``app`` and return it; ``one_time`` lets one
    login link sign its user in without a token (``ama dashboard``); ``oidc`` adds signing
    in with the server's OpenID Connect issuer."""
    dashboard = Dashboard(service, one_time, oidc)
    dashboard.add_routes(app)
    return dashboard
