"""`make_pair`: two agency-like record lists with a known overlap, for linkage tests."""

from __future__ import annotations

import numpy as np

from crosstally.synth.agencies import CANONICAL_COLUMNS, person_record, unique_ids
from crosstally.synth.corrupt import IdentityColumns, RecordStyle
from crosstally.synth.errors import ERROR_MODELS, ERROR_PROFILES, ErrorRates, error_classes
from crosstally.synth.population import People, draw_people
from crosstally.synth.realistic_corrupt import corrupt_records
from crosstally.synth.reference import IntArray
from crosstally.synth.world import AS_OF, DEFAULT_AGES, stream
from protocol.records import PersonRecord

_PAIR_STREAM = 7
LEFT_STYLE = RecordStyle()
RIGHT_STYLE = RecordStyle(upper_case=True, ssn_dashes=False)


def make_pair(
    *,
    left: int,
    right: int,
    overlap: float,
    seed: int,
    left_ssn: bool = True,
    right_ssn: bool = True,
    error_profile: str = "typical",
    error_model: str = "independent",
    errors_out: dict[str, tuple[str, ...]] | None = None,
) -> tuple[list[PersonRecord], list[PersonRecord], set[tuple[str, str]]]:
    """Two record lists drawn from one synthetic population and the set of true links.

    `round(overlap * min(left, right))` people appear on both sides; every other record is a
    distinct person. Each side is corrupted independently with `error_profile` rates
    (`clean`, `typical` or `heavy`; no duplicates, so true links are one-to-one); a side
    without SSN has `ssn=None` throughout. Returns (left records, right records, true
    (left record_id, right record_id) pairs). Left record ids are `L0000001`..., right `R...`.

    `error_model` is `independent` (every error drawn on its own) or `realistic` (errors come
    together in careless records; `error_profile` then scales how many records are careless:
    none for `clean`, 2.5 times as many for `heavy`). When `errors_out` is a dict it is
    filled with record_id -> the sorted `ERROR_CLASSES` names that record carries.
    """
    if left < 0 or right < 0:
        raise ValueError(f"left and right must be >= 0, got {left} and {right}")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap must be within [0, 1], got {overlap}")
    _check_model(error_profile, error_model)
    shared = round(overlap * min(left, right))
    total = left + right - shared
    rng = stream(seed, _PAIR_STREAM)
    people = draw_people(rng, max(total, 1), as_of=AS_OF, ages=DEFAULT_AGES)
    order = rng.permutation(total).astype(np.int64)
    left_people = order[:left]
    right_people = np.concatenate([order[:shared], order[left:]])
    rates = ERROR_PROFILES[error_profile]

    sides = []
    for prefix, chosen, ssn, style in (
        ("L", left_people, left_ssn, LEFT_STYLE),
        ("R", right_people, right_ssn, RIGHT_STYLE),
    ):
        rows = chosen[rng.permutation(len(chosen))]
        records = _records(
            rng, people, rows, prefix, rates.with_ssn(ssn), style, error_model, errors_out
        )
        sides.append((rows, records))

    (left_rows, left_records), (right_rows, right_records) = sides
    right_of = {p: i for i, p in enumerate(right_rows.tolist())}
    truth = {
        (left_records[i].record_id, right_records[right_of[p]].record_id)
        for i, p in enumerate(left_rows.tolist())
        if p in right_of
    }
    return left_records, right_records, truth


def make_parties(
    *,
    records: int,
    parties: int,
    overlap: float,
    seed: int,
    error_profile: str = "typical",
    error_model: str = "independent",
    errors_out: dict[str, tuple[str, ...]] | None = None,
) -> tuple[list[list[PersonRecord]], set[tuple[str, ...]]]:
    """`parties` record lists of `records` each; a share `overlap` of people is on every list.

    For benchmarks of N-party tallies: each list is corrupted independently with the
    `error_profile` rates; record ids are `A0000001`, `B...`, and so on. Returns the lists
    and, per shared person, the tuple of their record ids across the lists. `error_model` and
    `errors_out` are as for `make_pair`.
    """
    if parties < 2 or parties > 26:
        raise ValueError(f"parties must be between 2 and 26, got {parties}")
    if records < 0 or not 0.0 <= overlap <= 1.0:
        raise ValueError("records must be >= 0 and overlap within [0, 1]")
    _check_model(error_profile, error_model)
    shared = round(overlap * records)
    total = shared + parties * (records - shared)
    rng = stream(seed, _PAIR_STREAM + 1)
    people = draw_people(rng, max(total, 1), as_of=AS_OF, ages=DEFAULT_AGES)
    order = rng.permutation(total).astype(np.int64)
    rates = ERROR_PROFILES[error_profile]
    lists: list[list[PersonRecord]] = []
    rows_of: list[list[int]] = []
    for k in range(parties):
        own = order[shared + k * (records - shared) : shared + (k + 1) * (records - shared)]
        rows = np.concatenate([order[:shared], own])
        rows = rows[rng.permutation(len(rows))]
        style = LEFT_STYLE if k % 2 == 0 else RIGHT_STYLE
        prefix = chr(ord("A") + k)
        lists.append(_records(rng, people, rows, prefix, rates, style, error_model, errors_out))
        rows_of.append(rows.tolist())
    positions = [{p: i for i, p in enumerate(rows)} for rows in rows_of]
    truth = [
        tuple(lists[k][positions[k][p]].record_id for k in range(parties))
        for p in order[:shared].tolist()
    ]
    return lists, set(truth)


def _check_model(error_profile: str, error_model: str) -> None:
    if error_profile not in ERROR_PROFILES:
        known = ", ".join(ERROR_PROFILES)
        raise ValueError(f"unknown error_profile {error_profile!r}; expected one of {known}")
    if error_model not in ERROR_MODELS:
        known = ", ".join(ERROR_MODELS)
        raise ValueError(f"unknown error_model {error_model!r}; expected one of {known}")


def _records(
    rng: np.random.Generator,
    people: People,
    rows: IntArray,
    prefix: str,
    rates: ErrorRates,
    style: RecordStyle,
    error_model: str,
    errors_out: dict[str, tuple[str, ...]] | None,
) -> list[PersonRecord]:
    identity = IdentityColumns.of(people, rows)
    errors = corrupt_records(error_model, rng, identity, people, rows, rates, style)
    own = unique_ids(rng, len(rows), 9)
    width = max(7, len(str(len(rows))))
    columns = [getattr(identity, name) for name in CANONICAL_COLUMNS[2:]]
    records = [
        person_record((f"{prefix}{i + 1:0{width}d}", f"{prefix}P{own_id}", *values))
        for i, (own_id, *values) in enumerate(zip(own.tolist(), *columns, strict=True))
    ]
    if errors_out is not None:
        for record, flags in zip(records, errors.tolist(), strict=True):
            errors_out[record.record_id] = error_classes(flags)
    return records
