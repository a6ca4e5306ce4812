"""`crosstally demo`: a hub and seven agency nodes on loopback answer the three template questions.

Everything runs as it would in production, only on one machine: the hub and every node are
separate processes speaking HTTP on 127.0.0.1, each node reads its own synthetic CSV extract,
and the hub's store is SQLite in a temporary directory that is deleted afterwards.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from crosstally.report import print_released
from crosstally.templates import TEMPLATES, load_template
from protocol.driver import NodeData
from protocol.records import PersonRecord
from protocol.spec import parse_spec

if TYPE_CHECKING:
    from services.loopback import Deployment

NODE_OF_AGENCY = {
    "dcf": "DCF",
    "jbcssd": "JBCSSD",
    "csde": "CSDE",
    "dss": "DSS",
    "dol": "DOL",
    "doc": "DOC",
    "highered": "HIGHERED",
}
CANONICAL_COLUMNS = (
    "record_id", "person_id", "first_name", "middle_name", "last_name", "suffix", "dob", "sex",
    "ssn", "zip", "town", "address", "race", "ethnicity",
)  # fmt: skip
ANALYST = "demo-analyst"


def node_data(records: Sequence[PersonRecord]) -> NodeData:
    """A node's records with the columns its extract has."""
    extra = sorted({k for r in records[:1000] for k in r.attributes})
    return NodeData(records, [*CANONICAL_COLUMNS, *extra])


def nodes_from_extracts(extracts: Mapping[str, Sequence[PersonRecord]]) -> dict[str, NodeData]:
    return {NODE_OF_AGENCY[a]: node_data(recs) for a, recs in extracts.items()}


def run_demo(
    *,
    people: int,
    seed: int,
    console: Console,
    as_of: str = "2026-06-30",
    keep: Path | None = None,
) -> None:
    """Generate extracts, start the hub and nodes, run the templates, print released tables."""
    started = time.perf_counter()
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        _run(keep, people=people, seed=seed, console=console, as_of=as_of)
    else:
        with tempfile.TemporaryDirectory(prefix="crosstally-demo-") as directory:
            _run(Path(directory), people=people, seed=seed, console=console, as_of=as_of)
    console.print(f"done in {time.perf_counter() - started:.1f} s; every process has exited")


def _run(directory: Path, *, people: int, seed: int, console: Console, as_of: str) -> None:
    from crosstally.synth import generate, write_world
    from services.agency_node.store import NodeStore
    from services.governance import terms_for_spec
    from services.hub_api import HubAPI, released_table
    from services.loopback import Deployment

    with console.status(f"generating {people:,} synthetic people and seven agency extracts"):
        paths = write_world(generate(people=people, seed=seed), directory / "extracts")
    documents = {name: {**load_template(name), "as_of": as_of} for name in TEMPLATES}
    today = dt.date.today()
    agreements = [
        terms_for_spec(
            parse_spec(d),
            analysts=[ANALYST],
            valid_from=today,
            valid_until=today + dt.timedelta(days=365),
            title=f"demo: {name}",
        )
        for name, d in documents.items()
    ]
    deployment = Deployment.plan(
        directory,
        extracts={agency: {"path": paths[code]} for code, agency in NODE_OF_AGENCY.items()},
        agreements=agreements,
        analyst=ANALYST,
        operator="demo-operator",
    )
    hub, nodes = deployment.hub, deployment.nodes
    try:
        with console.status("starting the hub and seven agency nodes on 127.0.0.1"):
            deployment.start()
        console.print(
            f"[bold]crosstally demo[/bold]: {people:,} synthetic people, seed {seed}; hub at "
            f"{hub.url}, nodes {', '.join(n.agency for n in nodes)} (no inbound ports)"
        )
        with HubAPI(hub.url, deployment.operator_token) as api:
            queries = {name: api.submit(d).id for name, d in documents.items()}
            _follow(api, queries, console)
        with HubAPI(hub.url, deployment.analyst_token) as api:
            for name, query_id in queries.items():
                result = api.result(query_id)
                title = f"{name} ({result.kind}, agreement {result.agreement})"
                print_released(console, title, released_table(result.table))
                if result.kind == "match":
                    requester = parse_spec(documents[name])
                    holder = requester.cohorts[requester.requester or ""].node
                    node = deployment.node(holder)
                    matched = NodeStore(node.directory / "data" / "node.sqlite").members(query_id)
                    console.print(
                        f"  the {holder} node holds {len(matched):,} matched record ids locally; "
                        "the hub learned only the count"
                    )
        with hub.admin() as admin:
            relayed = [e for e in admin.audit() if e["action"] == "relay.stored"]
            chain = admin.verify_audit()
        # The audit keeps each size only as a power-of-two range, so no total is shown.
        console.print(
            f"[dim]{len(relayed)} sealed row sets went through the hub's "
            f"relay and were deleted; audit chain {'verified' if chain.ok else 'BROKEN'} "
            f"({chain.entries} entries)[/dim]"
        )
    except Exception:
        _print_log_tails(console, deployment)
        raise
    finally:
        deployment.stop()


def _print_log_tails(console: Console, deployment: Deployment) -> None:
    """The end of every process's log, for when something went wrong."""
    for name, tail in deployment.log_tails():
        console.print(f"[red]--- {name} log ---[/red]")
        console.print(tail, markup=False, highlight=False)


def _follow(api: object, queries: Mapping[str, str], console: Console) -> None:
    """One progress bar per query until all have ended."""
    from services.hub_api import ENDED, HubAPI

    assert isinstance(api, HubAPI)
    columns = (
        TextColumn("{task.description:<40}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} steps"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bars = {name: progress.add_task(name, total=None) for name in queries}
        pending = dict(queries)
        while pending:
            for name, query_id in list(pending.items()):
                detail = api.query(query_id)
                p = detail.progress
                progress.update(
                    bars[name],
                    total=p.steps_total,
                    completed=p.steps_done,
                    description=f"{name}: {p.phase}",
                )
                if detail.status in ENDED:
                    if detail.status != "released":
                        raise RuntimeError(f"{name} ended {detail.status}: {detail.error}")
                    del pending[name]
            time.sleep(0.3)
