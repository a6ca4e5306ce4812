"""Leakage: scan every message each party emits for identifiers and recomputable functions."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import pytest

from crosstally.demo import nodes_from_extracts
from crosstally.synth import generate
from protocol.blinding import P256Engine
from protocol.driver import NodeData, prepare_all, run_tally
from protocol.linkage.keys import fill_slots
from protocol.messages import RowSet
from protocol.paillier import ciphertexts_from_bytes
from protocol.records import IDENTIFIER_FIELDS
from protocol.spec import QuerySpec, parse_spec
from protocol.tally import HubTally, Joiner, TallyNode

UNKEYED = (b"\x00" * 31) + b"\x01"  # scalar 1: hash-to-curve with no secret at all
MIN_NEEDLE = 6  # shorter strings occur by chance in megabytes of random bytes


def forbidden(
    spec: QuerySpec, data: Mapping[str, NodeData], engine: P256Engine
) -> dict[bytes, str]:
    """Every identifier, attribute value, normalized token and unkeyed hash of one."""
    needles: dict[bytes, str] = {}

    def add(value: bytes, why: str) -> None:
        if len(value) >= MIN_NEEDLE:
            needles[value] = why

    for node in data.values():
        for r in node.records:
            for name in (*IDENTIFIER_FIELDS, *r.attributes):
                raw = r.value(name)
                if raw:
                    add(raw.encode(), f"raw {name}")
                    add(raw.upper().encode(), f"raw {name}")
            if r.first_name and r.last_name:
                add(f"{r.first_name} {r.last_name}".encode(), "full name")
    tokens = [t for p in prepare_all(spec, data).values() for row in p.slots for t in row if t]
    items = fill_slots(tokens)
    for token, item in zip(tokens, items, strict=True):
        add(item, "normalized token")
        for part in token.split("\x1f", 1)[1].split("\x1e"):
            add(part.encode(), "normalized value")
        for algo in ("sha256", "sha1", "md5"):
            add(hashlib.new(algo, item).digest(), f"{algo} of a token")
        add(hashlib.blake2b(item, digest_size=8).digest(), "cleartext token id")
    for point, token in zip(engine.hash_and_blind(UNKEYED, items), tokens, strict=True):
        add(point, f"unkeyed hash-to-curve of {token[:12]!r}")
        add(point[1:], "unkeyed hash-to-curve x coordinate")
    return needles


def scan(messages: Iterable[tuple[str, str, bytes]], needles: Mapping[bytes, str]) -> list[str]:
    found = []
    for sender, to, wire in messages:
        for needle, why in needles.items():
            if needle in wire:
                found.append(f"{sender}->{to}: {why}")
    return found


@pytest.fixture(scope="module")
def world() -> dict[str, NodeData]:
    return nodes_from_extracts(generate(people=500, seed=9).extracts)


SPEC = {
    "name": "leak", "agreement": "DSA-L", "kind": "tally", "as_of": "2026-06-30",
    "cohorts": {
        "dcf": {"node": "DCF", "where": "substantiated or placed"},
        "jj": {"node": "JBCSSD", "where": "juvenile_cases >= 1"},
        "snap": {"node": "DSS", "where": "snap and age <= 21"},
    },
    "population": "dcf & (jj | snap)",
    "group_by": ["dcf.sex", "entry_order(dcf.first_contact, jj.first_contact)"],
}  # fmt: skip


def test_no_message_carries_an_identifier_or_a_recomputable_function_of_one(
    engine: P256Engine, world: dict[str, NodeData]
) -> None:
    spec = parse_spec(SPEC)
    messages: list[tuple[str, str, bytes]] = []
    run_tally(spec, world, engine=engine, observer=lambda s, t, w: messages.append((s, t, w)))
    needles = forbidden(spec, world, engine)
    assert len(messages) >= 7 and len(needles) > 1000
    assert scan(messages, needles) == []


def test_the_scanner_finds_a_planted_identifier(
    engine: P256Engine, world: dict[str, NodeData]
) -> None:
    spec = parse_spec(SPEC)
    needles = forbidden(spec, world, engine)
    token = next(n for n, why in needles.items() if why == "normalized token")
    ssn = next(n for n, why in needles.items() if why == "raw ssn")
    planted = [("DCF", "JBCSSD", b"\x02" * 100 + token), ("DSS", "hub", ssn + b"\x00")]
    found = set(scan(planted, needles))
    assert {"DCF->JBCSSD: normalized token", "DSS->hub: raw ssn"} <= found


def test_own_rows_return_shuffled_and_rerandomized(
    engine: P256Engine, world: dict[str, NodeData]
) -> None:
    two = {k: v for k, v in SPEC["cohorts"].items() if k != "snap"}
    spec = parse_spec(
        {**SPEC, "population": "dcf & jj", "group_by": ["dcf.sex", "jj.sex"], "cohorts": two}
    )
    hub = HubTally(spec)
    task = hub.task
    assert task.joiner == "JBCSSD"
    dcf = TallyNode("DCF", world["DCF"].records, world["DCF"].columns, engine=engine)
    jj = TallyNode("JBCSSD", world["JBCSSD"].records, world["JBCSSD"].columns, engine=engine)
    (dcf_out,) = dcf.start(task)
    (jj_out,) = jj.start(task)
    assert jj_out.to == "DCF" and dcf_out.to == "JBCSSD"
    returned = dcf.forward(task, jj_out.rows)
    assert returned.to == "JBCSSD"
    back = returned.rows
    # Re-randomized: no ciphertext JB-CSSD sent comes back byte-identical.
    sent = {c.value for c in ciphertexts_from_bytes(jj_out.rows.ciphertexts, task.public_key)}
    got = {c.value for c in ciphertexts_from_bytes(back.ciphertexts, task.public_key)}
    assert sent and not sent & got
    # Shuffled: re-blinding JB-CSSD's own rows with DCF's secret in JB-CSSD's order differs.
    in_order = engine.blind(dcf._secrets[task.query_id], jj_out.rows.point_list())
    assert sorted(in_order) == sorted(back.point_list())
    assert in_order != back.point_list()
    # Points changed: none of JB-CSSD's own blinded points survives the hop.
    assert not set(jj_out.rows.point_list()) & set(back.point_list())
    # The hop into the joiner itself: JB-CSSD blinds and shuffles DCF's rows for its own
    # use, so re-randomizing their ciphertexts would hide nothing from anyone; they move as
    # DCF sent them (DCF's own encryptions, which DCF never sees again).
    into_joiner = jj.forward(task, dcf_out.rows)
    assert into_joiner.to == "JBCSSD"
    from_dcf = ciphertexts_from_bytes(dcf_out.rows.ciphertexts, task.public_key)
    kept = ciphertexts_from_bytes(into_joiner.rows.ciphertexts, task.public_key)
    assert sorted(c.value for c in from_dcf) == sorted(c.value for c in kept)
    joiner = Joiner(task)
    joiner.receive(back)
    joiner.receive(RowSet.from_bytes(into_joiner.rows.to_bytes()))
    result = hub.finish(joiner.finish())
    assert sum(result.histogram.values()) == result.population


def test_every_hop_between_two_parties_rerandomizes(
    engine: P256Engine, world: dict[str, NodeData]
) -> None:
    spec = parse_spec(SPEC)  # dcf and jj carry group codes; three parties, so two hops each
    messages: list[tuple[str, str, bytes]] = []
    run = run_tally(spec, world, engine=engine, observer=lambda s, t, w: messages.append((s, t, w)))
    key = run.hub.public_key
    last: dict[str, list[int]] = {}
    checked = {"between parties": 0, "into the joiner itself": 0}
    for sender, to, wire in messages[:-1]:  # the last message is the tally for the hub
        rows = RowSet.from_bytes(wire)
        values = sorted(c.value for c in ciphertexts_from_bytes(rows.ciphertexts, key))
        before = last.get(rows.cohort)
        last[rows.cohort] = values
        if before is None or not values:
            continue
        if sender == to:
            assert values == before  # moved unchanged: only the joiner sees this hop
            checked["into the joiner itself"] += 1
        else:
            assert not set(values) & set(before)
            checked["between parties"] += 1
    assert checked["between parties"] >= 2 and checked["into the joiner itself"] >= 1


def test_hub_sees_only_the_histogram_and_no_row_level_data(
    engine: P256Engine, world: dict[str, NodeData]
) -> None:
    spec = parse_spec({**SPEC, "group_by": ["dcf.sex"]})
    messages: list[tuple[str, str, bytes]] = []
    run = run_tally(spec, world, engine=engine, observer=lambda s, t, w: messages.append((s, t, w)))
    to_hub = [w for _, t, w in messages if t == "hub"]
    assert len(to_hub) == 1
    # One-hot mode: a single packed ciphertext, however many people are in the population.
    assert len(to_hub[0]) < 1024 and run.result.population > 0
