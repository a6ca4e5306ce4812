"""Link quality against ground truth, match rates, and the concordance of two methods' links."""

from __future__ import annotations

import csv
from collections.abc import Collection, Mapping, Set
from dataclasses import dataclass, field
from pathlib import Path

from crosstally.extract import ExtractError

Pair = tuple[str, str]
PAIR_COLUMNS = ("left_id", "right_id")
# `crosstally synth` writes every record's true person; pairs follow from it.
PERSON_COLUMNS = ("record_id", "person_id")
# Its optional fourth column: the record's error classes, ';'-separated ('' when clean).
ERRORS_COLUMN = "errors"


@dataclass(frozen=True)
class Truth:
    """True (left id, right id) pairs among the loaded records, and what had to be dropped.

    `errors` maps a record id to its error classes when the truth file names them (synth's
    `errors` column), else it is None.
    """

    pairs: frozenset[Pair]
    source: str
    unknown: int  # pairs naming a record id that is not among the loaded records
    errors: Mapping[str, tuple[str, ...]] | None = field(default=None, compare=False)


def read_truth(path: Path, left_ids: Collection[str], right_ids: Collection[str]) -> Truth:
    """Read true pairs: `left_id,right_id` rows, or a synth `truth.csv` (record_id, person_id)."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ExtractError(f"cannot open truth file {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        errors: dict[str, tuple[str, ...]] | None = None
        if set(PAIR_COLUMNS) <= set(header):
            raw = {(row["left_id"].strip(), row["right_id"].strip()) for row in reader}
        elif set(PERSON_COLUMNS) <= set(header):
            errors = {} if ERRORS_COLUMN in header else None
            raw = _pairs_by_person(reader, left_ids, right_ids, errors)
        else:
            raise ExtractError(
                f"truth file {path}: needs columns {','.join(PAIR_COLUMNS)} (true pairs of record "
                f"ids) or {','.join(PERSON_COLUMNS)} (as crosstally synth writes); "
                f"it has {', '.join(header) or 'no header'}"
            )
    left, right = set(left_ids), set(right_ids)
    known = frozenset(p for p in raw if p[0] in left and p[1] in right)
    return Truth(known, str(path), len(raw) - len(known), errors)


def _pairs_by_person(
    reader: csv.DictReader[str],
    left_ids: Collection[str],
    right_ids: Collection[str],
    errors: dict[str, tuple[str, ...]] | None,
) -> set[Pair]:
    """True pairs from each record's person; fills `errors` for loaded records if given."""
    left, right = set(left_ids), set(right_ids)
    sides: dict[str, tuple[list[str], list[str]]] = {}
    for row in reader:
        record, person = row["record_id"].strip(), row["person_id"].strip()
        if errors is not None and (record in left or record in right):
            text = row.get(ERRORS_COLUMN) or ""
            errors[record] = tuple(sorted({c.strip() for c in text.split(";") if c.strip()}))
        if record in left:
            sides.setdefault(person, ([], []))[0].append(record)
        elif record in right:
            sides.setdefault(person, ([], []))[1].append(record)
    return {(a, b) for ls, rs in sides.values() for a in ls for b in rs}


@dataclass(frozen=True)
class Quality:
    """Precision, recall and F1 (None without truth) and the match rate of one method."""

    links: int
    match_rate: float
    precision: float | None
    recall: float | None
    f1: float | None
    true_links: int | None


def quality(links: Set[Pair], left_records: int, truth: Truth | None) -> Quality:
    """Quality of one method's record pairs; match rate is the share of left records linked."""
    linked = len({a for a, _ in links})
    rate = linked / left_records if left_records else 0.0
    if truth is None:
        return Quality(len(links), rate, None, None, None, None)
    hits = len(links & truth.pairs)
    precision = hits / len(links) if links else (1.0 if not truth.pairs else 0.0)
    recall = hits / len(truth.pairs) if truth.pairs else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return Quality(len(links), rate, precision, recall, f1, hits)


@dataclass(frozen=True)
class Concordance:
    """Links found by both methods, by the classic hub only, and by the PET only."""

    both: frozenset[Pair]
    classic_only: frozenset[Pair]
    pet_only: frozenset[Pair]

    def counts(self) -> dict[str, int]:
        return {
            "both": len(self.both),
            "classic_only": len(self.classic_only),
            "pet_only": len(self.pet_only),
        }


def concordance(classic: Set[Pair], pet: Set[Pair]) -> Concordance:
    return Concordance(frozenset(classic & pet), frozenset(classic - pet), frozenset(pet - classic))


def discordant_sample(
    found: Collection[Pair], truth: Truth | None, size: int
) -> list[dict[str, str | bool | None]]:
    """The first `size` pairs in id order (reproducible), with whether each is a true pair."""
    return [
        {"left_id": a, "right_id": b, "true_pair": None if truth is None else (a, b) in truth.pairs}
        for a, b in sorted(found)[:size]
    ]
