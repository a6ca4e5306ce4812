"""What every service command shares: the console, logging, hub client options, failing cleanly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from services.hub_api import HubAPI, HubError
from services.logs import LOG_FORMAT_ENV
from services.logs import setup_logging as configure

console = Console()
err = Console(stderr=True)

HubUrl = Annotated[
    str,
    typer.Option("--hub", envvar="CROSSTALLY_HUB_URL", help="hub base URL"),
]
Token = Annotated[
    str,
    typer.Option("--token", envvar="CROSSTALLY_TOKEN", help="your credential", show_default=False),
]


LogFormatOption = Annotated[
    str | None,
    typer.Option(
        "--log-format",
        envvar=LOG_FORMAT_ENV,
        help="text (the default) or json: one JSON object a line, with query_id and step",
        show_default=False,
    ),
]


def setup_logging(level: str = "info", log_format: str = "text") -> None:
    """Plain lines, or JSON lines with each line's query and step (services.logs)."""
    try:
        configure(level, log_format)
    except ValueError as exc:
        raise fail(str(exc)) from exc


def fail(message: str) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code=1)


@contextmanager
def hub_api(url: str, token: str) -> Iterator[HubAPI]:
    """A hub client whose errors end the command with the hub's own message."""
    if not token:
        raise fail("no credential: pass --token or set CROSSTALLY_TOKEN")
    try:
        with HubAPI(url, token) as api:
            yield api
    except HubError as exc:
        raise fail(str(exc)) from exc


def default_hub_url() -> str:
    return os.environ.get("CROSSTALLY_HUB_URL", "http://127.0.0.1:8700")
