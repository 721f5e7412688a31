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


def serve(dashboard: Dashboard, link_label: str, open_browser: bool) -> None:
    """Print where ``dashboard`` listens and its login link, open the link, and answer
    until Ctrl-C."""
    click.echo(f"Serving the dashboard of {dashboard.remote} at {dashboard.url}")
    click.echo(f"{link_label}: {dashboard.login_url}")
    click.echo("Press Ctrl-C to stop.")
    sys.stdout.flush()
    if open_browser:
        open_in_browser(dashboard.login_url)
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
    when one is available. Only this machine can reach the address.
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
