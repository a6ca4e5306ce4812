"""A derived date term's field says nothing about which cohort's date is missing (issue 13, 6).

The hub decrypts every group code, so it sees each derived term's field digit in full.
Before, a missing first date left a field of about 100 bits and a missing second date one
of 127 bits; now both are ``OFFSET`` plus a 100-bit random number.
"""

from __future__ import annotations

import random

import pytest

from crosstally.templates import load_template
from protocol.groups import (
    MASK_BITS,
    NOT_APPLICABLE,
    OFFSET,
    GroupLayout,
    absent_contribution,
    build_layout,
    contribution,
    decode_code,
)
from protocol.paillier import MIN_N_BITS
from protocol.records import PersonRecord
from protocol.setexpr import parse_population
from protocol.spec import QuerySpec, parse_spec
from protocol.tally import MAX_COUNT

TERM = "entry_order(dcf.first_contact, jj.first_contact)"


def either_cohort() -> tuple[QuerySpec, GroupLayout]:
    """Crossover youth grouped by entry order only, over people in either cohort."""
    document = {
        **load_template("crossover-youth"),
        "as_of": "2026-06-30",
        "population": "dcf | jj",
        "group_by": [TERM],
        "levels": {},
    }
    spec = parse_spec(document)
    population = parse_population(spec.population, spec.cohorts)
    layout = build_layout(spec, population, n_bits=MIN_N_BITS, max_count=MAX_COUNT)
    assert layout.mode == "codes" and layout.radix is not None
    return spec, layout


def person(first_contact: str | None) -> list[PersonRecord]:
    attributes = {} if first_contact is None else {"first_contact": first_contact}
    return [PersonRecord(record_id="r1", attributes=attributes)]


def field_of(layout: GroupLayout, code: int) -> tuple[int, int]:
    """(validity digit, field digit) of the derived term in a decrypted code."""
    assert layout.radix is not None
    valid, field = layout.radix.decode(code)
    return valid, field


def code_for(
    spec: QuerySpec,
    layout: GroupLayout,
    dcf: str | bool | None,
    jj: str | bool | None,
    rng: random.Random,
) -> int:
    """The decrypted code of one entity: a date string, None (row without a date) or False
    (the cohort is absent from the entity, so the joiner fills its side in)."""
    randbits = rng.getrandbits
    code, present = 0, set()
    for cohort, value in (("dcf", dcf), ("jj", jj)):
        if value is False:
            continue
        present.add(cohort)
        assert value is None or isinstance(value, str)
        (share,) = contribution(layout, cohort, person(value), spec, randbits=randbits)
        code += share
    return code + absent_contribution(layout, present, randbits=randbits)


# Each way one of the two dates can be missing: a row without the date, or no row at all.
FIRST_MISSING = [(None, "2020-03-01"), (False, "2020-03-01")]
SECOND_MISSING = [("2019-05-17", None), ("2019-05-17", False)]


@pytest.mark.parametrize(("dcf", "jj"), FIRST_MISSING + SECOND_MISSING)
def test_one_missing_date_gives_a_field_of_the_same_size_whichever_side(
    dcf: str | bool | None, jj: str | bool | None
) -> None:
    spec, layout = either_cohort()
    rng = random.Random(13)
    for _ in range(200):
        code = code_for(spec, layout, dcf, jj, rng)
        valid, field = field_of(layout, code)
        assert valid == 1
        assert field.bit_length() == OFFSET.bit_length()  # 127 bits, whichever side
        assert OFFSET - (1 << 17) < field < OFFSET + (1 << MASK_BITS) + (1 << 17)
        assert decode_code(layout, code) == (NOT_APPLICABLE,)


def test_the_same_mask_leaves_the_two_sides_a_few_thousand_apart() -> None:
    """With the mask fixed, the two cases differ only by the present date's day count
    (under 2^17), against a mask of 2^100: statistically indistinguishable."""
    spec, layout = either_cohort()
    mask = 0x5A5A_1234_5678_9ABC_DEF0_1234_5
    fields = []
    for dcf, jj in (FIRST_MISSING[0], SECOND_MISSING[0]):
        code = code_for(spec, layout, dcf, jj, rng=_Fixed(mask))
        fields.append(field_of(layout, code)[1])
    assert abs(fields[0] - fields[1]) < 1 << 17


def test_both_dates_still_give_their_order_and_none_gives_n_a() -> None:
    spec, layout = either_cohort()
    rng = random.Random(5)
    both = code_for(spec, layout, "2019-05-17", "2020-03-01", rng)
    assert decode_code(layout, both) == ("dcf first",)
    assert field_of(layout, both)[0] == 2
    neither = code_for(spec, layout, None, False, rng)
    assert field_of(layout, neither)[0] == 0
    assert decode_code(layout, neither) == (NOT_APPLICABLE,)


class _Fixed(random.Random):
    """A random source whose every draw is one fixed value (for a known-answer check)."""

    def __init__(self, value: int) -> None:
        super().__init__(0)
        self.value = value

    def getrandbits(self, k: int, /) -> int:
        return self.value % (1 << k)
