"""ama dashboard: the web dashboard of an embedded ``file://`` remote, served on 127.0.0.1.

An ``ama-server`` serves the dashboard itself at ``/``; a folder remote has no server, so
this runs the same pages (``ama_remote.dashboard``) in this process, on the loopback
interface only, for the local user. Instead of a token, a one-time login link signs the
browser in: whoever can read this terminal can open it, once, as Jupyter does.

The pages live under a secret path, ``http://127.0.0.1:PORT/<random>/``, and so does the
session cookie. A browser sends a cookie of 127.0.0.1 to every port of it: at the root, a
user's session would go along to any server another user of the machine runs on 127.0.0.1
(a link to it is enough), and that user could then sign in here with it. Under the secret
path it goes only to this server, and another user's dashboard cannot overwrite it.
"""

from __future__ import annotations

import hmac
import secrets
import socketserver
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ama.plumbing.errors import BadInput
from ama.porcelain.config import Config
from ama.porcelain.remotes import file_path, get

LOOPBACK = "127.0.0.1"


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    # A page and its thumbnails load at once; a slow download must not hold the others.
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the terminal for the login link: no line per request."""


@dataclass
class Dashboard:
    """A dashboard listening on 127.0.0.1: its ``url``, and ``login_url`` to sign in once."""

    remote: str
    url: str
    login_url: str
    server: WSGIServer

    def serve_forever(self) -> None:
        """Answer requests until :meth:`shutdown` is called or the process is interrupted."""
        self.server.serve_forever()

    def close(self) -> None:
        """Stop listening."""
        self.server.server_close()


def _under(root: str, app: Any) -> Callable[..., Iterable[bytes]]:
    """The WSGI ``app`` served under the path ``root`` (its SCRIPT_NAME there) alone: any
    other path is not found, naming nothing."""
    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        # Compared in constant time: the secret path is what keeps other users out.
        if not hmac.compare_digest(path[:len(root)].encode(), root.encode()):
            path = ""
        if path == root:
            start_response("308 Permanent Redirect", [("Location", root + "/"),
                                                      ("Content-Length", "0")])
            return [b""]
        if not path.startswith(root + "/"):
            body = b"Not found: the dashboard's address is the one it printed.\n"
            start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8"),
                                              ("Content-Length", str(len(body)))])
            return [body]
        environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + root
        environ["PATH_INFO"] = path[len(root):]
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return serve


def editor_path(project: str, name: str) -> str:
    """The path of the class editor of class ``name`` of ``project`` on a dashboard."""
    return f"/p/{quote(project, safe='')}/c/{quote(name, safe='')}/edit"


def open_dashboard(config: Config, remote: str | None = None, port: int = 0,
                   next_page: str | None = None) -> Dashboard:
    """Return a :class:`Dashboard` for the ``file://`` remote ``remote`` (default: the
    default remote), listening on 127.0.0.1 at ``port`` (0: a free port); its login link
    leads to the path ``next_page`` (default: the projects). Raises BadInput for a server
    remote (it serves its own dashboard) or when the server extra is missing.
    """
    info = get(config, remote)
    if info.kind != "file":
        raise BadInput(f"remote {info.name!r} is a server: it serves its dashboard itself",
                       f"open {info.url}/ in a browser")
    try:
        import falcon

        from ama_remote.dashboard import OneTimeLogin, add_dashboard
        from ama_remote.embedded import open_embedded
    except ImportError as e:
        raise BadInput(f"the dashboard needs a package that is not installed: {e.name}",
                       "pip install 'amapy[server]'") from e
    service, caller = open_embedded(file_path(info.url))
    once = OneTimeLogin(caller.username)
    app: Any = falcon.App()
    add_dashboard(app, service, once)
    root = "/" + secrets.token_urlsafe(16)
    server = make_server(LOOPBACK, port, _under(root, app), server_class=_ThreadingServer,
                         handler_class=_QuietHandler)
    url = f"http://{LOOPBACK}:{server.server_port}{root}"
    login = f"{url}/login/once?key={once.key}"
    if next_page:
        login += "&next=" + quote(root + next_page, safe="/")
    return Dashboard(info.url, url + "/", login, server)
