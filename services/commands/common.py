"""What every service command shares: the console, logging, hub client options, failing cleanly."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated
from urllib.parse import urlsplit

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


URL_HINT = "give the hub's base URL, without /v1 (for example http://127.0.0.1:8700)"


def hub_url_problem(url: str) -> str | None:
    """Why `url` cannot be the hub's base URL, if it plainly cannot."""
    parsed = urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        return f"hub URL {url!r} looks wrong: {URL_HINT}"
    if parsed.path.rstrip("/").endswith("/v1") or "/v1/" in parsed.path:
        return f"hub URL {url} looks wrong: it names the API path; {URL_HINT}"
    return None


@contextmanager
def hub_api(url: str, token: str) -> Iterator[HubAPI]:
    """A hub client whose errors end the command with the hub's own message."""
    if not token:
        raise fail("no credential: pass --token or set CROSSTALLY_TOKEN")
    problem = hub_url_problem(url)
    if problem is not None:
        raise fail(problem)
    try:
        with HubAPI(url, token) as api:
            yield api
    except HubError as exc:
        message = str(exc)
        if exc.status == 404 and message == "Not Found":  # no route at all, not a missing thing
            message = f"{message}: no hub API at {url}; the URL looks wrong: {URL_HINT}"
        raise fail(message) from exc


def default_hub_url() -> str:
    return os.environ.get("CROSSTALLY_HUB_URL", "http://127.0.0.1:8700")
