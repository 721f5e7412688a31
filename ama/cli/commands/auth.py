"""ama auth: sign up, log in (browser or token), show the login, log out."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ama.cli.command import group
from ama.cli.commands._porcelain import emit_json, json_option, note, quiet_option

if TYPE_CHECKING:  # the porcelain loads when a command runs, not with the command table
    from ama.porcelain.auth import Account

EXIT_CODES = {0: "success", 2: "bad usage, or no remote given",
              3: "the remote has no browser login", 4: "the login was refused or failed",
              5: "the remote or the identity provider cannot be reached"}


def remote_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--remote", metavar="URL",
                        help="The server's URL (default: $AMA_REMOTE).")(f)


@group(
    "auth",
    examples=[
        ("Ask for an account:", "ama auth signup -u ada -e ada@example.org --remote "
                                "https://ama.example.org"),
        ("Log in with the browser:", "ama auth login --remote https://ama.example.org"),
        ("Copy a login to a machine without a browser:",
         "ama auth info --token   # then, on the other machine: ama auth login --token TOKEN"),
        ("Log out (the token stops working everywhere):", "ama auth logout"),
    ],
    see_also=["ama-config(1)", "ama-server(1)"],
    exit_codes=EXIT_CODES,
)
def command() -> None:
    """Sign up, log in and out of a remote, and show who you are logged in as.

    The remote is the server's URL, from --remote or AMA_REMOTE. Tokens are kept in
    $AMA_HOME/credentials (readable by you only); AMA_TOKEN overrides the stored token for
    one command.
    """


def _print_account(account: Account, verb: str) -> None:
    email = f" ({account['email']})" if account.get("email") else ""
    click.echo(f"{verb} {account['remote']} as {account['username']}{email}")
    projects = account.get("projects") or []
    if not projects:
        click.echo("no projects yet: ask a project admin for a role")
        return
    click.echo("projects:")
    for p in projects:
        click.echo(f"  {p['name']}\t{p['role']}")


@command.command("signup",
                 examples=[("Ask for an account on a server:",
                            "ama auth signup -u ada -e ada@example.org --remote "
                            "https://ama.example.org")],
                 exit_codes={0: "the account was created", 1: "the name is taken",
                                        2: "bad usage or an invalid name or email",
                                        5: "the remote cannot be reached"})
@click.option("-u", "--username", required=True, help="The user name you want.")
@click.option("-e", "--email", required=True,
              help="Your email address (the one your identity provider vouches for).")
@remote_option
@json_option
def signup(username: str, email: str, remote: str | None, as_json: bool) -> None:
    """Ask the remote for an account. It is active at once when the server allows open
    sign-up for your email's domain; otherwise a server admin activates it."""
    from ama.porcelain import auth

    url = auth.remote_url(remote)
    user = auth.signup(url, username, email)
    if as_json:
        emit_json(user)
        return
    if user.get("active"):
        click.echo(f"signed up as {user['username']} on {url}; log in with "
                   f"'ama auth login'")
    else:
        click.echo(f"signed up as {user['username']} on {url}; a server admin must activate "
                   "the account before you can log in")


@command.command("login",
                 examples=[("Log in with the browser:",
                            "ama auth login --remote https://ama.example.org"),
                           ("On a machine without a browser, with a token printed elsewhere:",
                            "ama auth login --token ama_… --remote https://ama.example.org")],
                 exit_codes=EXIT_CODES)
@click.option("--token", metavar="TOKEN",
              help="Log in with a token printed by 'ama auth info --token' or "
                   "'ama-server token issue' instead of the browser.")
@click.option("--no-browser", is_flag=True,
              help="Do not open a browser; only print the URL to open.")
@click.option("--timeout", type=click.IntRange(min=1), default=300, show_default=True,
              help="Seconds to wait for the browser.")
@remote_option
@json_option
@quiet_option
def login(token: str | None, no_browser: bool, timeout: int, remote: str | None,
          as_json: bool, quiet: bool) -> None:
    """Log in to the remote and keep the token. Without --token, the browser opens at your
    identity provider's sign-in page (the URL is printed too) and comes back to a one-time
    port on 127.0.0.1. Prints the user and the projects they can use."""
    from ama.porcelain import auth

    url = auth.remote_url(remote)
    if token is not None:
        account = auth.login_with_token(url, token)
    else:
        def show(link: str) -> None:
            # Always shown: on a machine without a browser, the user opens it by hand.
            click.echo(f"Open this URL in a browser to log in:\n  {link}", err=True)

        account = auth.browser_login(url, show, open_browser=(lambda _u: False) if no_browser
                                     else _open_browser, timeout=timeout)
    if as_json:
        emit_json(account)
        return
    _print_account(account, "logged in to")
    note(f"the token is stored in $AMA_HOME/{auth.CREDENTIALS_FILE}", quiet)


def _open_browser(link: str) -> bool:
    import webbrowser

    return webbrowser.open(link)


@command.command("info",
                 examples=[("Who am I on the server in AMA_REMOTE:", "ama auth info"),
                           ("Print the token to log in on another machine:",
                            "ama auth info --token")],
                 exit_codes={0: "logged in", 2: "bad usage, or no remote given",
                                      4: "not logged in, or the token is no longer valid",
                                      5: "the remote cannot be reached"})
@click.option("--token", "show_token", is_flag=True,
              help="Print only the token, to log in on another machine with "
                   "'ama auth login --token'.")
@remote_option
@json_option
def info(show_token: bool, remote: str | None, as_json: bool) -> None:
    """Show who you are logged in as on the remote and the projects you can use."""
    from ama.porcelain import auth

    url = auth.remote_url(remote)
    account = auth.info(url)
    if show_token:
        click.echo(account["token"])
        return
    if as_json:
        emit_json({k: v for k, v in account.items() if k != "token"})
        return
    _print_account(account, "logged in to")


@command.command("logout",
                 examples=[("Log out of a server:",
                            "ama auth logout --remote https://ama.example.org")],
                 exit_codes={0: "logged out", 2: "bad usage, or no remote given",
                                        4: "not logged in", 5: "the remote cannot be reached"})
@remote_option
@quiet_option
def logout(remote: str | None, quiet: bool) -> None:
    """Revoke the token on the remote (it stops working on every machine it was copied to)
    and forget it here."""
    from ama.porcelain import auth

    url = auth.remote_url(remote)
    result = auth.logout(url)
    if result["revoked"]:
        note(f"logged out of {url}", quiet)
    else:
        note(f"the token was no longer valid on {url}; forgot it here", quiet)
