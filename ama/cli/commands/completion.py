"""ama completion: print the shell completion script for bash, zsh or fish."""

from __future__ import annotations

import click

from ama.cli.command import command

SHELLS = ("bash", "zsh", "fish")
RC_FILES = {"bash": "~/.bashrc", "zsh": "~/.zshrc", "fish": "~/.config/fish/config.fish"}


@command(
    "completion",
    examples=[
        ("Complete ama commands and options in bash (add the line to ~/.bashrc):",
         'eval "$(ama completion bash)"'),
        ("The same for zsh (in ~/.zshrc, after compinit):", 'eval "$(ama completion zsh)"'),
        ("For fish:", "mkdir -p ~/.config/fish/completions && "
                      "ama completion fish > ~/.config/fish/completions/ama.fish"),
    ],
    exit_codes={0: "success", 2: "an unknown shell"},
)
@click.argument("shell", type=click.Choice(SHELLS))
def command(shell: str) -> None:
    """Print the script that makes SHELL complete ama's commands, options and class names.

    Install it once with the line for your shell:

    \b
      bash: echo 'eval "$(ama completion bash)"' >> ~/.bashrc
      zsh:  echo 'eval "$(ama completion zsh)"' >> ~/.zshrc
      fish: mkdir -p ~/.config/fish/completions
            ama completion fish > ~/.config/fish/completions/ama.fish

    The script asks ama itself (with _AMA_COMPLETE set) what can follow, so it stays
    right as commands change.
    """
    from click.shell_completion import get_completion_class

    from ama.cli.main import cli

    completion = get_completion_class(shell)
    assert completion is not None  # every name in SHELLS is one of click's
    click.echo(completion(cli, {}, "ama", "_AMA_COMPLETE").source())
