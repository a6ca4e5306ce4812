"""`crosstally query submit|status|result|list|cancel` for operators and analysts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from services.commands.common import HubUrl, Token, console, fail, hub_api
from services.hub_api import HubAPI, released_table
from services.wire import QueryDetail

app = typer.Typer(help="Submit queries and read their results.", no_args_is_help=True)
DEFAULT_HUB = "http://127.0.0.1:8700"


def load_spec(source: str, as_of: str | None = None) -> dict[str, Any]:
    """A spec from a JSON file, or a shipped template by name."""
    from crosstally.templates import TEMPLATES, load_template

    if source in TEMPLATES:
        spec = load_template(source)
    else:
        try:
            spec = json.loads(Path(source).read_text())
        except OSError as exc:
            raise fail(
                f"{source} is neither a template ({', '.join(TEMPLATES)}) nor a readable file"
            ) from exc
        except ValueError as exc:
            raise fail(f"{source} is not valid JSON: {exc}") from exc
    if as_of:
        spec["as_of"] = as_of
    return spec


def wait_with_progress(api: HubAPI, query_id: str, *, label: str = "") -> QueryDetail:
    """Follow a query with a progress bar until it ends."""
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(label or query_id, total=None)

        def show(detail: QueryDetail) -> None:
            p = detail.progress
            progress.update(
                bar,
                total=p.steps_total,
                completed=p.steps_done,
                description=f"{label or detail.name}: {p.phase}",
            )

        return api.wait(query_id, on_progress=show)


def print_status(detail: QueryDetail) -> None:
    p = detail.progress
    console.print(
        f"{detail.id}  {detail.name}  [bold]{detail.status}[/bold]  {p.phase}  "
        f"{p.steps_done}/{p.steps_total} steps  (agreement {detail.agreement})"
    )
    if detail.error:
        console.print(f"  [red]{detail.error}[/red]")


@app.command()
def submit(
    spec: Annotated[str, typer.Argument(help="spec JSON file, or a template name")],
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
    joiner: Annotated[str | None, typer.Option(help="joining node (default: last)")] = None,
    as_of: Annotated[str | None, typer.Option(help="reference date YYYY-MM-DD")] = None,
    wait: Annotated[bool, typer.Option(help="follow progress until the query ends")] = False,
) -> None:
    """Submit a query under its agreement (operator credential)."""
    document = load_spec(spec, as_of)
    with hub_api(hub, token) as api:
        query = api.submit(document, joiner)
        console.print(f"submitted {query.id} ({query.name}); ring {' -> '.join(query.ring)}")
        if wait:
            detail = wait_with_progress(api, query.id)
            print_status(detail)
            if detail.status != "released":
                raise typer.Exit(code=1)


@app.command()
def status(
    query_id: str,
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
    wait: Annotated[bool, typer.Option(help="follow progress until the query ends")] = False,
) -> None:
    """A query's status, per-step progress and errors."""
    with hub_api(hub, token) as api:
        detail = wait_with_progress(api, query_id) if wait else api.query(query_id)
        print_status(detail)
        for t in detail.tasks:
            step = t.input_step or "own cohorts"
            note = f"  {t.error}" if t.error else ""
            console.print(
                f"  {t.kind:<8} {t.node:<10} {step:<16} {t.status:<9} x{t.attempts}{note}"
            )


@app.command()
def result(
    query_id: str,
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
    wait: Annotated[bool, typer.Option(help="wait for the query to end first")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The released (disclosure-controlled) table; analysts named in the agreement only."""
    from crosstally.report import print_released

    with hub_api(hub, token) as api:
        if wait:
            detail = api.wait(query_id)
            if detail.status != "released":
                raise fail(f"query {query_id} ended {detail.status}: {detail.error}")
        released = api.result(query_id)
    if as_json:
        typer.echo(json.dumps(released.model_dump(mode="json"), indent=2))
        return
    title = f"{released.name} ({released.kind}, agreement {released.agreement})"
    print_released(console, title, released_table(released.table))


@app.command("list")
def list_queries(hub: HubUrl = DEFAULT_HUB, token: Token = "") -> None:
    """Queries you may follow, newest first."""
    with hub_api(hub, token) as api:
        for q in api.queries():
            console.print(f"{q.id}  {q.submitted_at:%Y-%m-%d %H:%M}  {q.name:<22} {q.status}")


@app.command()
def cancel(query_id: str, hub: HubUrl = DEFAULT_HUB, token: Token = "") -> None:
    """Stop a running query (its key and relay blobs are destroyed)."""
    with hub_api(hub, token) as api:
        console.print(f"{api.cancel(query_id).status}")
