"""The privacy-preserving side of an evaluation: the real private protocol, run in-process.

Both agencies' nodes, the joiner and the hub run exactly the code the services run
(`protocol.driver.run_tally`, the curve engine the spec names, 2048-bit Paillier), every
message serialized as on the wire. Only the harness, which plays every party, can map
the joiner's links back to records, through the shuffles it recorded.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocol.blinding import make_engine
from protocol.driver import NodeData, ShuffleTrace, TallyRun, run_tally, traced_entities
from protocol.linkage.keys import profile_for_fields
from protocol.records import IDENTIFIER_FIELDS, PersonRecord
from protocol.spec import QuerySpec, parse_spec

LEFT_NODE, RIGHT_NODE = "LEFT", "RIGHT"
LEFT, RIGHT = "l", "r"


def pair_spec(*, keys: str, as_of: dt.date) -> QuerySpec:
    """Two whole extracts, every person counted once: links are what the evaluation reads."""
    return parse_spec({
        "name": "evaluation", "agreement": "EVALUATION", "kind": "tally",
        "as_of": as_of.isoformat(),
        "cohorts": {LEFT: {"node": LEFT_NODE}, RIGHT: {"node": RIGHT_NODE}},
        "population": f"{LEFT} | {RIGHT}", "group_by": [], "linkage": {"keys": keys},
    })  # fmt: skip


@dataclass
class PetLinkage:
    """Record pairs the private protocol linked, its cost, and every candidate pair's score."""

    pairs: set[tuple[str, str]]
    seconds: float
    bytes_exchanged: int
    messages: int
    tokens_per_record: int
    rows: dict[str, int]
    candidate_records: list[tuple[list[str], list[str]]]
    log2_odds: np.ndarray
    model: dict[str, Any]


AUTO_KEYS = "auto"


def _filled(records: Sequence[PersonRecord]) -> set[str]:
    """Identifier fields that at least one record holds."""
    return {f for f in IDENTIFIER_FIELDS if any(r.value(f) for r in records)}


def run_pet(
    left: Sequence[PersonRecord],
    right: Sequence[PersonRecord],
    *,
    columns: tuple[Sequence[str], Sequence[str]],
    keys: str = "auto",
    as_of: dt.date,
) -> PetLinkage:
    """Run the private tally on the two extracts and read its links back as record pairs.

    `keys="auto"` takes the built-in profile that suits the fields both extracts fill
    (`standard`, or `no_dob` when one side has no DOB at all).
    """
    if keys == AUTO_KEYS:
        keys = profile_for_fields(*(_filled(records) for records in (left, right)))
    spec = pair_spec(keys=keys, as_of=as_of)
    data = {LEFT_NODE: NodeData(left, columns[0]), RIGHT_NODE: NodeData(right, columns[1])}
    trace = ShuffleTrace()
    started = time.perf_counter()
    with make_engine(spec.linkage.curve) as engine:
        run = run_tally(spec, data, engine=engine, shuffle=trace)
    seconds = time.perf_counter() - started
    pairs = {
        (a.record_id, b.record_id)
        for entity in traced_entities(run, trace)
        if LEFT in entity and RIGHT in entity
        for a in entity[LEFT]
        for b in entity[RIGHT]
    }
    candidates, log2_odds, model = _candidates(run, trace)
    return PetLinkage(
        pairs=pairs,
        seconds=seconds,
        bytes_exchanged=run.bytes_exchanged,
        messages=run.messages,
        tokens_per_record=spec.linkage.keys.slots,
        rows={c: r.rows for c, r in run.joiner.received.items()},
        candidate_records=candidates,
        log2_odds=log2_odds,
        model=model,
    )


def _persons(run: TallyRun, trace: ShuffleTrace, label: str) -> list[list[PersonRecord]]:
    """The cohort's persons in the joiner's row order (undoing every recorded shuffle)."""
    task = run.joiner.task
    node = task.spec.cohorts[label].node
    start = task.ring.index(node)
    back = trace.original_index(label, [*task.ring[start:], *task.ring[:start]])
    persons = run.nodes[node].prepared[label].persons
    return [persons[i] for i in back] if back else list(persons)


def _candidates(
    run: TallyRun, trace: ShuffleTrace
) -> tuple[list[tuple[list[str], list[str]]], np.ndarray, dict[str, Any]]:
    """Each candidate pair the joiner scored, as record ids, with its score in log2 odds."""
    result = run.joiner.link_result
    if result is None or not result.pairs:
        return [], np.zeros(0), {}
    scored = result.pairs[0]
    rows = {LEFT: _persons(run, trace, LEFT), RIGHT: _persons(run, trace, RIGHT)}
    left_rows, right_rows = rows[scored.left], rows[scored.right]
    flip = scored.left != LEFT
    records = []
    for i, j in zip(scored.ia.tolist(), scored.ib.tolist(), strict=True):
        a = [r.record_id for r in left_rows[i]]
        b = [r.record_id for r in right_rows[j]]
        records.append((b, a) if flip else (a, b))
    # The joiner's scores are natural-log odds; Splink's match weights are log2 odds.
    return records, np.asarray(scored.score) / math.log(2), scored.model.to_dict()
