"""ama dashboard: serve the web dashboard of a folder remote on 127.0.0.1."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import click

from ama.cli.command import command

if TYPE_CHECKING:
    from ama.porcelain.dashboard import Dashboard


def _can_open_a_browser() -> bool:
    # Without a display, Python's webbrowser falls back to a text browser in this very
    # terminal, which would hide the link and hold the terminal; a BROWSER the user set is
    # their choice.
    return sys.platform in ("darwin", "win32") or bool(
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("BROWSER"))


def open_in_browser(url: str) -> None:
    """Open ``url`` in the user's browser when there is one (the URL is printed anyway)."""
    if _can_open_a_browser():
        import webbrowser

        webbrowser.open(url)


def _private_page(folder: str, url: str) -> str:
    """Write a page that leads to ``url`` in ``folder`` (the user's alone) and return its
    file:// address: a browser's command line is for every user of the machine to read, and
    the login link's key would let the first to read it sign in."""
    import html
    from pathlib import Path

    page = Path(folder) / "dashboard.html"
    link = html.escape(url)
    fd = os.open(page, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f'<!doctype html><meta http-equiv="refresh" content="0;url={link}">'
                f'<a href="{link}">Open the dashboard</a>\n')
    return page.as_uri()


def serve(dashboard: Dashboard, link_label: str, open_browser: bool) -> None:
    """Print where ``dashboard`` listens and its login link, open the link, and answer
    until Ctrl-C."""
    import tempfile

    click.echo(f"Serving the dashboard of {dashboard.remote} at {dashboard.url}")
    click.echo(f"{link_label}: {dashboard.login_url}")
    click.echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
    with tempfile.TemporaryDirectory(prefix="ama-dashboard-") as folder:  # mode 0700
        if open_browser:
            open_in_browser(_private_page(folder, dashboard.login_url))
        try:
            dashboard.serve_forever()
        except KeyboardInterrupt:
            click.echo("Stopped.")
        finally:
            dashboard.close()


@command(
    "dashboard",
    examples=[
        ("Browse the assets of the local remote in a browser:", "ama dashboard"),
        ("On a fixed port, printing the link only:", "ama dashboard --port 8765 --no-browser"),
    ],
    see_also=["ama-remote(1)", "ama-server(1)"],
    exit_codes={0: "stopped with Ctrl-C", 2: "a server remote (it serves its own dashboard), "
                "a port in use, or the server extra not installed",
                3: "no such remote"},
)
@click.option("--remote", metavar="NAME", help="The folder remote to show (default: the "
              "default remote).")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The port on 127.0.0.1 to listen on; 0 picks a free one.")
@click.option("--no-browser", is_flag=True, help="Print the login link without opening a "
              "browser.")
def command(remote: str | None, port: int, no_browser: bool) -> None:
    """Serve the web dashboard of a folder (file://) remote on 127.0.0.1 until Ctrl-C.

    The pages are those an ama-server serves at its address: projects, classes, assets,
    versions with their files and previews, lineage, diffs and search. The printed login
    link signs one browser in as the remote's local user, once; it is opened in a browser
    when one is available. Only this machine can reach the address, and the pages and
    their session cookie live under a secret path of it: no other server on 127.0.0.1 (another
    user's, on another port) is sent the session.
    """
    from ama.plumbing.errors import BadInput
    from ama.porcelain.config import Config
    from ama.porcelain.dashboard import open_dashboard

    try:
        dashboard = open_dashboard(Config.open(), remote, port)
    except OSError as e:
        raise BadInput(f"cannot listen on 127.0.0.1:{port}: {e.strerror}",
                       "choose another --port, or 0 for a free one") from e
    serve(dashboard, "Sign in (once) at", not no_browser)
