"""The hub's deterministic passes: exact agreement on identifier combinations it trusts."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from crosstally.classic.prepare import SourceRecords
from protocol.records import NormalizedPerson

KeyFn = Callable[[NormalizedPerson], str | None]


def _ssn_dob(p: NormalizedPerson) -> str | None:
    return f"{p.ssn}|{p.dob.isoformat()}" if p.ssn and p.dob else None


def _ssn_name(p: NormalizedPerson) -> str | None:
    return f"{p.ssn}|{p.first}|{p.last}" if p.ssn and p.first and p.last else None


def _name_dob(p: NormalizedPerson) -> str | None:
    return f"{p.first}|{p.last}|{p.dob.isoformat()}" if p.first and p.last and p.dob else None


def _sorted_name_dob(p: NormalizedPerson) -> str | None:
    # Swapped first and last names give the same sorted pair.
    if not (p.first and p.last and p.dob):
        return None
    return "|".join([*sorted((p.first, p.last)), p.dob.isoformat()])


@dataclass(frozen=True)
class Pass:
    """One deterministic pass: a name for reports and the exact key it compares."""

    name: str
    key: KeyFn


# In the order a DIH runs them: the most trusted combination first.
PASSES = (
    Pass("ssn+dob", _ssn_dob),
    Pass("ssn+name", _ssn_name),
    Pass("name+dob", _name_dob),
    Pass("swapped name+dob", _sorted_name_dob),
)


def _person_keys(source: SourceRecords, key: KeyFn) -> dict[str, set[int]]:
    """Key value -> the source's persons having it on any of their records."""
    out: dict[str, set[int]] = {}
    for record, person in zip(source.normalized, source.person_of, strict=True):
        value = key(record)
        if value is not None:
            out.setdefault(value, set()).add(person)
    return out


def deterministic_pairs(
    left: SourceRecords, right: SourceRecords
) -> Iterator[tuple[int, int, int]]:
    """(pass index, left person, right person) for every pass, most trusted pass first.

    A key that several persons of one source share identifies nobody; such pairs are left
    to the probabilistic model instead of being guessed here.
    """
    for index, rule in enumerate(PASSES):
        lk, rk = _person_keys(left, rule.key), _person_keys(right, rule.key)
        for value in sorted(lk.keys() & rk.keys()):
            a, b = lk[value], rk[value]
            if len(a) == 1 and len(b) == 1:
                yield index, next(iter(a)), next(iter(b))
