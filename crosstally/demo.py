"""`crosstally demo`: synthetic Connecticut agencies answer the three template questions."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence

from rich.console import Console
from rich.progress import Progress

from crosstally.report import print_released
from crosstally.templates import TEMPLATES, load_template
from protocol.blinding import P256Engine
from protocol.driver import NodeData, match_members, run_tally
from protocol.records import CANONICAL_FIELDS, PersonRecord
from protocol.spec import parse_spec

NODE_OF_AGENCY = {
    "dcf": "DCF",
    "jbcssd": "JBCSSD",
    "csde": "CSDE",
    "dss": "DSS",
    "dol": "DOL",
    "doc": "DOC",
    "highered": "HIGHERED",
}


def node_data(records: Sequence[PersonRecord]) -> NodeData:
    """A node's records with the columns its extract has."""
    extra = sorted({k for r in records[:1000] for k in r.attributes})
    return NodeData(records, [*CANONICAL_FIELDS, *extra])


def nodes_from_extracts(extracts: Mapping[str, Sequence[PersonRecord]]) -> dict[str, NodeData]:
    return {NODE_OF_AGENCY[a]: node_data(recs) for a, recs in extracts.items()}


def run_demo(*, people: int, seed: int, console: Console, as_of: str = "2026-06-30") -> None:
    from crosstally.synth import generate

    started = time.perf_counter()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("generating synthetic agencies", total=len(TEMPLATES) + 1)
        world = generate(people=people, seed=seed)
        data = nodes_from_extracts(world.extracts)
        progress.advance(task)
        engine = P256Engine()
        outcomes = []
        try:
            for name in TEMPLATES:
                progress.update(
                    task, description=f"running {name} (private set intersection + Paillier)"
                )
                spec = parse_spec({**load_template(name), "as_of": as_of})
                run = run_tally(spec, data, engine=engine)
                outcomes.append((name, spec, run))
                progress.advance(task)
        finally:
            engine.close()
    sizes = ", ".join(f"{n} {len(d.records):,}" for n, d in data.items())
    console.print(
        f"[bold]crosstally demo[/bold]: {people:,} synthetic people, seed {seed}; extracts: {sizes}"
    )
    for name, spec, run in outcomes:
        print_released(
            console, f"{name} ({spec.kind}, agreement {spec.agreement})", run.result.released
        )
        if spec.kind == "match":
            members = match_members(run)
            holder = spec.cohorts[spec.requester or ""].node
            console.print(
                f"  the {holder} node now holds {len(members):,} matched record ids locally; "
                "the hub learned only the count"
            )
        megabytes = run.bytes_exchanged / 1e6
        console.print(f"  [dim]{run.messages} messages, {megabytes:.1f} MB between parties[/dim]")
    console.print(f"done in {time.perf_counter() - started:.1f} s")
