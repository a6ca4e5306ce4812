"""`crosstally evaluate --scenario`: one template question answered three ways on a synthetic world.

The truth links every selected record to its true person (the generator knows it); the
classic hub links the same cohorts' records in the clear and counts; the PET runs the
private tally exactly as the demo does. All three count with the same cohort selection
and group labels (`protocol.groups.reference_labels`), so the tables differ only by
linkage. The released PET table is the one after disclosure control.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from crosstally.classic.link import link_sources
from crosstally.demo import NODE_OF_AGENCY, node_data
from crosstally.templates import load_template
from protocol.blinding import make_engine
from protocol.cohort import WhereClause
from protocol.disclosure import ReleasedTable
from protocol.driver import NodeData, ShuffleTrace, match_members, run_tally, traced_entities
from protocol.groups import build_layout, reference_labels
from protocol.paillier import MIN_N_BITS
from protocol.records import PersonRecord
from protocol.setexpr import parse_population
from protocol.spec import QuerySpec, parse_spec
from protocol.tally import MAX_COUNT

SCENARIOS = {"crossover": "crossover-youth", "disconnected": "disconnected-youth",
             "pebt": "pebt-match"}  # fmt: skip
STEPS = 8  # generate, PET, four classic steps, truth, reports
AGENCY_OF_NODE = {node: agency for agency, node in NODE_OF_AGENCY.items()}
Key = tuple[str, ...]
Entity = Mapping[str, Sequence[PersonRecord]]


@dataclass(frozen=True)
class Membership:
    """How well a method's population matches the true population, person by person."""

    counted: int  # entities the method counted
    # distinct true persons of the population that some counted entity holds alone; a
    # person split over two counted entities is found once, and the other entity is an error
    correct: int
    truth: int  # persons truly in the population

    @property
    def precision(self) -> float:
        return self.correct / self.counted if self.counted else 1.0

    @property
    def recall(self) -> float:
        return self.correct / self.truth if self.truth else 1.0

    def to_json(self) -> dict[str, Any]:
        return {"counted": self.counted, "correct": self.correct, "true_population": self.truth,
                "precision": self.precision, "recall": self.recall}  # fmt: skip


@dataclass
class ScenarioResult:
    """The three tables, the released PET table, and how each method got there."""

    scenario: str
    spec: QuerySpec
    people: int
    seed: int
    dimensions: tuple[str, ...]
    tables: dict[str, dict[Key, int]]
    released: ReleasedTable
    membership: dict[str, Membership]
    facts_population: int
    cohort_records: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    pet_bytes: int = 0
    pet_messages: int = 0

    def keys(self) -> list[Key]:
        return sorted({k for table in self.tables.values() for k in table})

    def total(self, method: str) -> int:
        return sum(self.tables[method].values())

    def abs_error(self, method: str) -> int:
        """Sum over cells of |method − truth| before disclosure control."""
        truth = self.tables["truth"]
        return sum(abs(self.tables[method].get(k, 0) - truth.get(k, 0)) for k in self.keys())

    def to_json(self) -> dict[str, Any]:
        released = {tuple(c.key): c for c in self.released.cells}
        rows = []
        for key in self.keys():
            cell = released.get(key)
            rows.append({
                "key": list(key), **{m: t.get(key, 0) for m, t in self.tables.items()},
                "pet_released": None if cell is None else cell.count,
                "pet_status": None if cell is None else cell.status,
            })  # fmt: skip
        return {
            "scenario": self.scenario, "template": self.spec.name, "people": self.people,
            "seed": self.seed, "dimensions": list(self.dimensions), "cells": rows,
            "totals": {m: self.total(m) for m in self.tables},
            "abs_error": {m: self.abs_error(m) for m in ("classic", "pet")},
            "population_membership": {m: v.to_json() for m, v in self.membership.items()},
            "facts_population": self.facts_population, "cohort_records": self.cohort_records,
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "pet": {"bytes_exchanged": self.pet_bytes, "messages": self.pet_messages,
                    "tokens_per_record": self.spec.linkage.keys.slots},
            "pet_released": self.released.to_dict(),
        }  # fmt: skip


def _facts_population(scenario: str, world: Any) -> int:
    facts = world.facts
    if scenario == "crossover":
        return int(facts.crossover.sum())
    if scenario == "disconnected":
        return int(facts.disconnected.sum())
    school, social = facts.csde, facts.dss
    return int((school.record & school.enrolled & school.free_reduced_meal
                & social.record & social.snap).sum())  # fmt: skip


def select_cohorts(spec: QuerySpec, data: Mapping[str, NodeData]) -> dict[str, list[PersonRecord]]:
    """Each cohort's records, selected by its where clause exactly as its node selects them."""
    out = {}
    for label, cohort in spec.cohorts.items():
        node = data[cohort.node]
        where = WhereClause(cohort.where, node.columns, as_of=spec.as_of)
        out[label] = [r for r in node.records if where.matches(r)]
    return out


def _tabulate(spec: QuerySpec, entities: Sequence[Entity]) -> tuple[dict[Key, int], list[Entity]]:
    population = parse_population(spec.population, spec.cohorts)
    layout = build_layout(spec, population, n_bits=MIN_N_BITS, max_count=MAX_COUNT)
    table: dict[Key, int] = {}
    counted = []
    for entity in entities:
        if population.contains(set(entity)):
            key = reference_labels(layout, entity, spec)
            table[key] = table.get(key, 0) + 1
            counted.append(entity)
    return table, counted


def _true_entities(
    spec: QuerySpec, cohorts: Mapping[str, list[PersonRecord]], record_person: Any
) -> list[dict[str, list[PersonRecord]]]:
    by_person: dict[int, dict[str, list[PersonRecord]]] = {}
    for label, records in cohorts.items():
        persons = record_person[AGENCY_OF_NODE[spec.cohorts[label].node]]
        for record in records:
            by_person.setdefault(persons[record.record_id], {}).setdefault(label, []).append(record)
    return list(by_person.values())


def _membership(
    spec: QuerySpec, counted: Sequence[Entity], truth_persons: set[int], record_person: Any
) -> Membership:
    correct: set[int] = set()
    for entity in counted:
        persons = {
            record_person[AGENCY_OF_NODE[spec.cohorts[label].node]][r.record_id]
            for label, records in entity.items()
            for r in records
        }
        if len(persons) == 1 and (p := next(iter(persons))) in truth_persons:
            correct.add(p)
    return Membership(len(counted), len(correct), len(truth_persons))


def run_scenario(
    scenario: str, *, people: int, seed: int, step: Callable[[str], None] | None = None
) -> ScenarioResult:
    """Generate the world, run the template's question both ways, and tabulate the truth."""
    from crosstally.synth import generate

    report = step or (lambda _: None)
    spec_doc = load_template(SCENARIOS[scenario])
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    report(f"generating {people:,} synthetic people")
    world = generate(people=people, seed=seed)
    spec = parse_spec({**spec_doc, "as_of": world.as_of.isoformat()})
    data = {n: node_data(world.extracts[AGENCY_OF_NODE[n]]) for n in spec.nodes()}
    seconds["generate"] = time.perf_counter() - started

    report(f"PET: private {spec.kind} across {', '.join(spec.nodes())} (real cryptography)")
    trace = ShuffleTrace()
    started = time.perf_counter()
    with make_engine(spec.linkage.curve) as engine:
        run = run_tally(spec, data, engine=engine, shuffle=trace)
    seconds["pet"] = time.perf_counter() - started
    pet_table, pet_counted = _tabulate(spec, traced_entities(run, trace))
    if spec.kind != "match" and pet_table != run.result.histogram:
        raise RuntimeError("traced PET entities do not reproduce the decrypted histogram")

    cohorts = select_cohorts(spec, data)
    hub = link_sources(cohorts, today=spec.as_of, step=report)
    seconds["classic"] = hub.seconds
    classic_table, classic_counted = _tabulate(spec, hub.entity_records())

    report("tabulating the truth")
    truth_table, truth_counted = _tabulate(spec, _true_entities(spec, cohorts, world.record_person))
    truth_persons = {
        world.record_person[AGENCY_OF_NODE[spec.cohorts[label].node]][records[0].record_id]
        for entity in truth_counted
        for label, records in list(entity.items())[:1]
    }
    membership = {
        "classic": _membership(spec, classic_counted, truth_persons, world.record_person),
        "pet": _membership(spec, pet_counted, truth_persons, world.record_person),
    }
    if spec.kind == "match":
        # The requester's node learns its matched records; check they are the traced ones.
        members = set(match_members(run))
        requester = spec.requester or ""
        traced = {r.record_id for e in pet_counted for r in e.get(requester, [])}
        if members != traced:
            raise RuntimeError("match members differ from the traced PET entities")
    layout_dims = run.result.dimensions
    return ScenarioResult(
        scenario=scenario, spec=spec, people=people, seed=seed, dimensions=layout_dims,
        tables={"truth": truth_table, "classic": classic_table, "pet": pet_table},
        released=run.result.released, membership=membership,
        facts_population=_facts_population(scenario, world),
        cohort_records={label: len(records) for label, records in cohorts.items()},
        seconds=seconds, pet_bytes=run.bytes_exchanged, pet_messages=run.messages,
    )  # fmt: skip


def print_scenario(console: Console, result: ScenarioResult) -> None:
    """The three tables side by side with the released PET cells, then the headline figures."""
    data = result.to_json()
    table = Table(
        title=f"{result.spec.name}: {result.people:,} synthetic people, seed {result.seed}",
        title_justify="left",
    )
    for dim in result.dimensions:
        table.add_column(dim)
    for column in ("truth", "classic", "PET", "PET released"):
        table.add_column(column, justify="right")
    for row in data["cells"]:
        shown = row["pet_released"] if row["pet_released"] is not None else f"* {row['pet_status']}"
        table.add_row(*row["key"], str(row["truth"]), str(row["classic"]), str(row["pet"]),
                      "—" if row["pet_status"] is None else str(shown))  # fmt: skip
    totals = data["totals"]
    table.add_section()
    table.add_row("total", *[""] * (len(result.dimensions) - 1), str(totals["truth"]),
                  str(totals["classic"]), str(totals["pet"]),
                  str(result.released.total.count if result.released.total.count is not None
                      else "*"))  # fmt: skip
    console.print(table)
    for method in ("classic", "pet"):
        m = result.membership[method]
        console.print(
            f"{method}: |table − truth| summed over cells {result.abs_error(method)}; "
            f"population membership precision {m.precision:.4f}, recall {m.recall:.4f}; "
            f"{result.seconds[method]:.1f} s"
        )
    console.print(
        f"PET: {result.pet_messages} messages, {result.pet_bytes / 1e6:.1f} MB between parties; "
        f"cohort records {', '.join(f'{k} {v:,}' for k, v in result.cohort_records.items())}; "
        f"population by the generator's facts: {result.facts_population:,}"
    )
    for note in result.released.notes:
        console.print(f"  [dim]{note}[/dim]")
