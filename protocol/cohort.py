"""Node-side cohort preparation: select records, deduplicate to persons, derive key slots.

`where` clauses are small Python-syntax boolean expressions over extract columns
(``substantiated or placed``, ``juvenile_cases >= 1``, ``age >= 14 and age <= 26``),
parsed with the standard library's ``ast`` and evaluated over a whitelist of nodes.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from protocol.dedup import fuzzy_duplicate_pairs, record_token_ids
from protocol.errors import InvalidSpec
from protocol.linkage.keys import KeyProfile
from protocol.linkage.normalize import normalize_person, parse_dob
from protocol.records import NormalizedPerson, PersonRecord

_TRUE = frozenset({"Y", "YES", "TRUE", "T", "1"})
_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
}
DERIVED_COLUMNS = frozenset({"age"})


class WhereClause:
    """A parsed cohort filter; `matches(record)` evaluates it on one record."""

    def __init__(self, text: str, columns: Collection[str], *, as_of: dt.date) -> None:
        self.text = text.strip()
        self.as_of = as_of
        self._tree: ast.expr | None = None
        if not self.text:
            return
        try:
            self._tree = ast.parse(self.text, mode="eval").body
        except SyntaxError as exc:
            raise InvalidSpec(
                f"where clause {self.text!r} is not valid: {exc.msg} at column {exc.offset}; "
                'write e.g. "substantiated or placed" or "juvenile_cases >= 1"'
            ) from exc
        known = set(columns) | DERIVED_COLUMNS
        for node in ast.walk(self._tree):
            if not isinstance(node, _ALLOWED):
                raise InvalidSpec(
                    f"where clause {self.text!r} uses {type(node).__name__}; allowed: column "
                    "names, numbers, quoted strings, comparisons, and/or/not"
                )
            if isinstance(node, ast.Name) and node.id not in known:
                raise InvalidSpec(
                    f"where clause {self.text!r} uses unknown column {node.id!r}; "
                    f"this extract has: {', '.join(sorted(known))}"
                )

    def matches(self, record: PersonRecord) -> bool:
        return True if self._tree is None else bool(self._eval(self._tree, record))

    def _eval(self, node: ast.expr, record: PersonRecord) -> object:
        if isinstance(node, ast.BoolOp):
            values = (self._eval(v, record) for v in node.values)
            return all(values) if isinstance(node.op, ast.And) else any(values)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return not self._eval(node.operand, record)
        if isinstance(node, ast.Compare):
            left = self._operand(node.left, record)
            for op, right_node in zip(node.ops, node.comparators, strict=True):
                right = self._operand(right_node, record)
                if not _compare(op, left, right):
                    return False
                left = right
            return True
        if isinstance(node, ast.Name):
            value = self._column(node.id, record)
            return _truthy(value)
        if isinstance(node, ast.Constant):
            return bool(node.value)
        raise InvalidSpec(f"where clause {self.text!r}: cannot evaluate {type(node).__name__}")

    def _operand(self, node: ast.expr, record: PersonRecord) -> object:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner = self._operand(node.operand, record)
            return -inner if isinstance(inner, int | float) else None
        if isinstance(node, ast.Name):
            return self._column(node.id, record)
        return self._eval(node, record)

    def _column(self, name: str, record: PersonRecord) -> str | int | None:
        if name == "age":
            dob = parse_dob(record.dob).value
            return None if dob is None else age_on(dob, self.as_of)
        return record.value(name)


_ALLOWED = (
    ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.Name,
    ast.Load, ast.Constant, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip


def _truthy(value: object) -> bool:
    if value is None:
        return False
    if isinstance(value, int | float):
        return value > 0
    text = str(value).strip().upper()
    if text in _TRUE:
        return True
    try:
        return float(text) > 0
    except ValueError:
        return False


def _compare(op: ast.cmpop, left: object, right: object) -> bool:
    if left is None or right is None:
        return False
    if isinstance(left, int | float) or isinstance(right, int | float):
        try:
            a, b = float(str(left)), float(str(right))
        except ValueError:
            return False
        return bool(_COMPARE[type(op)](a, b))
    return bool(_COMPARE[type(op)](str(left).strip().upper(), str(right).strip().upper()))


def age_on(dob: dt.date, as_of: dt.date) -> int:
    """Whole years of age on `as_of`."""
    return as_of.year - dob.year - ((as_of.month, as_of.day) < (dob.month, dob.day))


@dataclass
class PreparedCohort:
    """A cohort at its node: one entry per person (a group of that person's records)."""

    label: str
    persons: list[list[PersonRecord]]
    normalized: list[list[NormalizedPerson]]
    profile: KeyProfile
    selected_records: int
    _slots: list[list[str | None]] | None = None

    @property
    def slots(self) -> list[list[str | None]]:
        """Each person's key slots (computed on first use: the private path derives them in
        worker processes instead)."""
        if self._slots is None:
            self._slots = [self.profile.row_tokens(n) for n in self.normalized]
        return self._slots


Normalizer = Callable[[Sequence[PersonRecord], dt.date], list[NormalizedPerson]]
RecordIds = Callable[[Sequence[NormalizedPerson], KeyProfile], np.ndarray]


def normalize_records(records: Sequence[PersonRecord], as_of: dt.date) -> list[NormalizedPerson]:
    return [normalize_person(r, today=as_of) for r in records]


def prepare_cohort(
    label: str,
    records: Sequence[PersonRecord],
    *,
    where: WhereClause,
    profile: KeyProfile,
    normalize: Normalizer = normalize_records,
    record_ids: RecordIds = record_token_ids,
) -> PreparedCohort:
    """Select a cohort's records and group them into persons (`group_persons`).

    The node links its own records in the clear, which is allowed, so that one person
    makes one row. `normalize` and `record_ids` may spread their work over processes.
    """
    chosen = [r for r in records if where.matches(r)]
    normalized = normalize(chosen, where.as_of)
    groups = group_persons(chosen, normalized, profile, record_ids(normalized, profile))
    persons = [[chosen[i] for i in members] for members in groups]
    norm = [[normalized[i] for i in members] for members in groups]
    return PreparedCohort(label, persons, norm, profile, len(chosen))


def group_persons(
    records: Sequence[PersonRecord],
    normalized: Sequence[NormalizedPerson],
    profile: KeyProfile,
    ids: np.ndarray | None = None,
) -> list[list[int]]:
    """Indices of one agency's records grouped by person, groups in first-record order.

    Grouped by the agency's own person id, exact SSN with DOB, exact name with DOB, and
    `fuzzy_duplicate_pairs` (one error in name or DOB, with the same SSN or address);
    `ids` are the records' `record_token_ids` when the caller has them.
    """
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    first_seen: dict[tuple[str, ...], int] = {}
    for i, (record, person) in enumerate(zip(records, normalized, strict=True)):
        for key in _local_keys(record, person):
            union(i, first_seen.setdefault(key, i))
    for i, j in fuzzy_duplicate_pairs(normalized, profile, ids):
        union(i, j)
    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def _local_keys(record: PersonRecord, person: NormalizedPerson) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    if record.person_id and record.person_id.strip():
        keys.append(("pid", record.person_id.strip()))
    if person.ssn and person.dob:
        keys.append(("ssn", person.ssn, person.dob.isoformat()))
    if person.first and person.last and person.dob:
        keys.append(("name", person.first, person.last, person.dob.isoformat()))
    return keys
