"""Options the admin command groups share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from secretsd.settings import Settings

SettingsFor = Callable[..., Settings]
Decorator = Callable[[Callable[..., Any]], Callable[..., Any]]

passphrase_file = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Read the passphrase from this file ('-': standard input) instead of prompting.",
)
as_json = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def stacked(options: tuple[Decorator, ...]) -> Decorator:
    """One decorator applying `options` in the order they are listed."""

    def apply(f: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            f = option(f)
        return f

    return apply
