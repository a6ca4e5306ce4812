"""In-process drivers: run a whole query through the public steps, and the cleartext reference.

`run_tally` passes every message as bytes between the parties exactly as the services
do over HTTP, so tests can capture and scan what each party emits. `reference_tally`
computes the same answer in the clear with the same keys, linking and population.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from protocol.blinding import CurveEngine
from protocol.cohort import PreparedCohort, WhereClause, prepare_cohort
from protocol.groups import build_layout, reference_labels
from protocol.linkage.link import LinkResult, LinkSettings, link_cohorts
from protocol.messages import EncryptedTally, RowSet
from protocol.paillier import MIN_N_BITS, PrivateKey, PublicKey
from protocol.records import PersonRecord
from protocol.setexpr import parse_population
from protocol.spec import QuerySpec
from protocol.tally import MAX_COUNT, HubTally, Joiner, TallyNode, TallyResult, system_shuffle

Observer = Callable[[str, str, bytes], None]


@dataclass(frozen=True)
class NodeData:
    """One node's extract after column mapping: its records and the columns it has."""

    records: Sequence[PersonRecord]
    columns: Sequence[str]


@dataclass
class ShuffleTrace:
    """A shuffle that also records each permutation (for evaluation harnesses only)."""

    perms: dict[str, list[list[int]]] = field(default_factory=dict)

    def __call__(self, who: str, n: int) -> list[int]:
        order = system_shuffle(who, n)
        self.perms.setdefault(who, []).append(order)
        return order

    def original_index(self, cohort: str, ring_from_origin: Sequence[str]) -> list[int]:
        """For each final row of `cohort`, its index in the origin's prepared order."""
        index: list[int] | None = None
        for party in ring_from_origin:
            for order in self.perms.get(f"{party}:{cohort}", []):
                index = list(order) if index is None else [index[i] for i in order]
        return index or []


@dataclass
class TallyRun:
    """Everything an in-process tally produced."""

    result: TallyResult
    joiner: Joiner
    nodes: dict[str, TallyNode]
    bytes_exchanged: int
    messages: int
    hub: HubTally


def run_tally(
    spec: QuerySpec,
    data: Mapping[str, NodeData],
    *,
    engine: CurveEngine,
    joiner: str | None = None,
    observer: Observer | None = None,
    shuffle: Callable[[str, int], list[int]] = system_shuffle,
    keypair: tuple[PublicKey, PrivateKey] | None = None,
    spool: Path | None = None,
) -> TallyRun:
    """Run one tally end to end, every message serialized as it would be on the wire.

    With `spool`, nodes write their row sets to files there and every message is
    read back from a file, as a node does when it spools rather than holds.
    """
    hub = HubTally(spec, joiner=joiner, keypair=keypair)
    task = hub.task
    nodes = {
        name: TallyNode(
            name,
            data[name].records,
            data[name].columns,
            engine=engine,
            shuffle=shuffle,
            spool=spool,
        )
        for name in task.ring
    }
    join = Joiner(task, shuffle=shuffle)
    sent = 0
    count = 0

    def deliver(sender: str, to: str, rows: RowSet) -> None:
        nonlocal sent, count
        wire = rows.to_bytes()
        sent += len(wire)
        count += 1
        if observer:
            observer(sender, to, wire)
        if spool is None:
            received = RowSet.from_bytes(wire)
        else:
            path = spool / f"message-{count}.ctly"
            path.write_bytes(wire)
            received = RowSet.from_file(path)
        if to == task.joiner and set(received.applied) == set(task.ring):
            join.receive(received)
            return
        out = nodes[to].forward(task, received)
        deliver(to, out.to, out.rows)

    for name in task.ring:
        for out in nodes[name].start(task):
            deliver(name, out.to, out.rows)
    final = join.finish().to_bytes()
    sent += len(final)
    count += 1
    if observer:
        observer(task.joiner, "hub", final)
    result = hub.finish(EncryptedTally.from_bytes(final))
    for node in nodes.values():
        node.forget(task.query_id)
    return TallyRun(result, join, nodes, sent, count, hub)


@dataclass
class ReferenceRun:
    """The cleartext reference: prepared cohorts, links and histogram."""

    histogram: dict[tuple[str, ...], int]
    prepared: dict[str, PreparedCohort]
    links: LinkResult
    population: int


def clear_token_ids(slots: Sequence[Sequence[str | None]]) -> np.ndarray:
    """64-bit ids of cleartext tokens; unused slots get fresh random ids, as blinding would."""
    rows = [
        [_clear_id(t.encode() if t is not None else secrets.token_bytes(16)) for t in row]
        for row in slots
    ]
    width = len(rows[0]) if rows else 0
    return np.array(rows, dtype=np.int64).reshape(len(rows), width)


def _clear_id(token: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(token, digest_size=8).digest(), "big", signed=True)


def prepare_all(spec: QuerySpec, data: Mapping[str, NodeData]) -> dict[str, PreparedCohort]:
    out = {}
    for cohort in spec.cohorts.values():
        node = data[cohort.node]
        where = WhereClause(cohort.where, node.columns, as_of=spec.as_of)
        out[cohort.label] = prepare_cohort(
            cohort.label, node.records, where=where, profile=spec.linkage.keys
        )
    return out


def reference_tally(spec: QuerySpec, data: Mapping[str, NodeData]) -> ReferenceRun:
    """The same query computed in the clear (the oracle the private tally must equal)."""
    prepared = prepare_all(spec, data)
    ids = {c: clear_token_ids(p.slots) for c, p in prepared.items()}
    keys = spec.linkage.keys
    links = link_cohorts(
        ids,
        keys.group_slices,
        keys.comparison,
        settings=LinkSettings(threshold=spec.linkage.threshold),
        paired=keys.paired_slices,
    )
    population = parse_population(spec.population, spec.cohorts)
    layout = build_layout(spec, population, n_bits=MIN_N_BITS, max_count=MAX_COUNT)
    histogram: dict[tuple[str, ...], int] = {}
    chosen = 0
    for entity in links.entities:
        if not population.contains(set(entity)):
            continue
        chosen += 1
        members = {c: prepared[c].persons[row] for c, row in entity.items()}
        key = reference_labels(layout, members, spec)
        histogram[key] = histogram.get(key, 0) + 1
    return ReferenceRun(histogram, prepared, links, chosen)


@dataclass
class ExactCountRun:
    """An exact-key PSI cardinality run."""

    count: int
    bytes_exchanged: int


def run_exact_count(
    spec: QuerySpec, data: Mapping[str, NodeData], *, structure: str = "gcs"
) -> ExactCountRun:
    """openmined-psi cardinality on the spec's exact key: first cohort is the client."""
    from protocol.psi import CountClient, answer_count, exact_keys

    prepared = prepare_all(spec, data)
    first, second = list(spec.cohorts)
    profile, group = spec.linkage.keys, spec.linkage.exact_key
    client = CountClient("exact-count")
    request = client.request(exact_keys(prepared[first], profile, group))
    reply = answer_count(request, exact_keys(prepared[second], profile, group), structure=structure)
    sent = len(request.request) + len(reply.setup) + len(reply.response)
    return ExactCountRun(client.count(reply), sent)


def match_members(run: TallyRun) -> list[str]:
    """At the requester's node: record ids of its cohort's persons found in the other cohort."""
    spec = run.joiner.task.spec
    requester = spec.requester or ""
    node = run.nodes[spec.cohorts[requester].node]
    persons = node.prepared[requester].persons
    return sorted(r.record_id for row in run.joiner.members(requester) for r in persons[row])


def traced_entities(run: TallyRun, trace: ShuffleTrace) -> list[dict[str, list[PersonRecord]]]:
    """The joiner's entities mapped back to records through the recorded shuffles.

    Only an evaluation harness that plays every party can do this: it needs every
    party's permutation, which no real party ever sees.
    """
    task = run.joiner.task
    result = run.joiner.link_result
    if result is None:
        raise ValueError("the run has no link result")
    back: dict[str, list[int]] = {}
    for label, cohort in task.spec.cohorts.items():
        start = task.ring.index(cohort.node)
        order = [*task.ring[start:], *task.ring[:start]]
        back[label] = trace.original_index(label, order)
    out = []
    for entity in result.entities:
        members = {}
        for label, row in entity.items():
            prepared = run.nodes[task.spec.cohorts[label].node].prepared[label]
            index = back[label][row] if back[label] else row
            members[label] = prepared.persons[index]
        out.append(members)
    return out


def reference_entities(ref: ReferenceRun) -> list[dict[str, list[PersonRecord]]]:
    """The reference's entities as records."""
    return [
        {label: ref.prepared[label].persons[row] for label, row in e.items()}
        for e in ref.links.entities
    ]
