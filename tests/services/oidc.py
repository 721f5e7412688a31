"""A real OpenID provider on loopback (oidc-provider-mock under werkzeug), for the tests of
browser login.

``serve_provider(host="127.0.0.1", **options)`` yields a :class:`Provider` (its ``issuer``
URL, ``add_user``) and stops it at the end; the options go to ``oidc_provider_mock.app``.
The provider names itself after the host it is asked for: ``host="localhost"`` makes an
issuer on another site than a server at 127.0.0.1, as a real provider is, while both stay
on the loopback interface. Its sign-in page takes the subject in a form, which is what a
user types.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests


@dataclass
class Provider:
    issuer: str
    port: int

    def add_user(self, sub: str, email: str, verified: bool = True) -> None:
        requests.put(f"{self.issuer}/users/{sub}", timeout=10,
                     json={"email": email, "email_verified": verified,
                           "preferred_username": sub}).raise_for_status()

    def metadata(self) -> dict[str, Any]:
        answer: dict[str, Any] = requests.get(
            f"{self.issuer}/.well-known/openid-configuration", timeout=10).json()
        return answer


def serve_provider(host: str = "127.0.0.1", **options: Any) -> Iterator[Provider]:
    """Run a provider on a free port of 127.0.0.1, named ``http://HOST:PORT``."""
    import oidc_provider_mock
    import werkzeug.serving

    app = oidc_provider_mock.app(**options)
    server = werkzeug.serving.make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield Provider(f"http://{host}:{server.server_port}", server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
