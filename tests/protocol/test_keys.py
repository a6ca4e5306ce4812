"""Match keys: the standard profile's budget, error tolerance, and profile validation."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol.driver import clear_token_ids
from protocol.errors import InvalidSpec
from protocol.linkage.candidates import agreement_patterns
from protocol.linkage.keys import (
    PROFILES,
    STANDARD,
    KeyProfile,
    deletion_variants,
    fill_slots,
    load_profile,
    profile_for_fields,
    template_identifiers,
)
from protocol.linkage.normalize import normalize_person
from protocol.records import PersonRecord

# Single letters are initials, not names with a typo.
NAMES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=2, max_size=14)


def one_edit(name: str, draw_pos: int, letter: str, kind: int) -> str:
    pos = draw_pos % len(name)
    if kind == 0:
        return name[:pos] + letter + name[pos + 1 :]
    if kind == 1:
        return name[:pos] + letter + name[pos:]
    if kind == 2 and len(name) > 1:
        return name[:pos] + name[pos + 1 :]
    if len(name) > 1 and pos < len(name) - 1:
        return name[:pos] + name[pos + 1] + name[pos] + name[pos + 2 :]
    return name


@given(NAMES, st.integers(0, 20), st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), st.integers(0, 3))
def test_names_one_edit_apart_share_a_deletion_variant(
    name: str, pos: int, letter: str, kind: int
) -> None:
    other = one_edit(name, pos, letter, kind)
    for prefix in (7, 8):
        assert set(deletion_variants(name, prefix)) & set(deletion_variants(other, prefix))


@given(NAMES)
def test_deletion_variants_are_bounded(name: str) -> None:
    assert len(deletion_variants(name, 8)) <= 9


def person(**kw: str) -> PersonRecord:
    base = {"record_id": "r1", "first_name": "Jonathan", "last_name": "Smith-Garcia",
            "dob": "2004-03-07", "ssn": "123-45-6780", "zip": "06106", "sex": "M"}  # fmt: skip
    base.update(kw)
    return PersonRecord(**base)


def tokens(p: PersonRecord) -> dict[str, set[str]]:
    profile = load_profile("standard")
    row = profile.row_tokens([normalize_person(p, today=dt.date(2026, 6, 30))])
    out: dict[str, set[str]] = {}
    for group, (s, e) in zip(profile.groups, profile.group_slices, strict=True):
        out[group.name] = {t for t in row[s:e] if t is not None}
    return out


def agreeing(a: PersonRecord, b: PersonRecord) -> set[str]:
    ta, tb = tokens(a), tokens(b)
    return {g for g in ta if ta[g] & tb[g]}


def test_standard_profile_budget_is_at_most_48_tokens() -> None:
    profile = load_profile("standard")
    assert profile.slots <= 48
    assert len(tokens(person())) == len(profile.groups)


@pytest.mark.parametrize(
    ("change", "must_agree"),
    [
        ({"first_name": "Jonathon"}, {"first_typo_dob", "phonetic_dob"}),
        ({"last_name": "Smiht-Garcia"}, {"last_typo_dob", "first_dob"}),
        ({"first_name": "Smith-Garcia", "last_name": "Jonathan"}, {"name_pair_dob"}),
        ({"dob": "2004-07-03"}, {"name_dob_swap", "first_dob"} - {"first_dob"}),
        ({"dob": "2004-03-17"}, {"name_dob_partial", "soundex_pair_year"}),
        ({"last_name": "Garcia"}, {"first_dob", "first_sound_dob"}),
        ({"first_name": "Lee", "middle_name": "Jonathan"}, {"given_dob"}),
        ({"ssn": ""}, {"name_dob", "first_typo_dob", "last_typo_dob"}),
        ({"ssn": "123-45-6870", "last_name": "Jones"}, {"ssn_part_first", "first_dob"}),
    ],
)
def test_each_error_kind_keeps_some_group_in_agreement(
    change: dict[str, str], must_agree: set[str]
) -> None:
    assert must_agree <= agreeing(person(), person(**change))


def test_nickname_group_links_bill_and_william() -> None:
    assert "nickname_dob" in agreeing(person(first_name="Bill"), person(first_name="William"))


def test_unrelated_people_share_no_group() -> None:
    other = person(
        first_name="Maria", last_name="Lopez", dob="1999-11-23", ssn="234-56-7891", zip="06511"
    )
    assert agreeing(person(), other) == set()


def test_missing_keys_become_distinct_random_items() -> None:
    row = load_profile("standard").row_tokens([normalize_person(PersonRecord(record_id="x"))])
    assert all(t is None for t in row)
    items = fill_slots(row)
    assert len(set(items)) == len(items)
    assert all(i.startswith(b"\x00") for i in items)


def test_profile_is_data_and_round_trips() -> None:
    profile = load_profile(STANDARD)
    assert KeyProfile.from_dict(profile.to_dict()) == profile
    custom = load_profile(
        {"name": "tiny", "groups": [{"name": "ssn", "slots": 1, "templates": [["ssn", "last"]]}]}
    )
    assert custom.slots == 1


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("nope", "unknown key profile 'nope'"),
        ({"name": "x", "groups": []}, "has no groups"),
        (
            {"name": "x", "groups": [{"name": "a", "slots": 1, "templates": [["shoe_size"]]}]},
            "unknown field",
        ),
        (
            {"name": "x", "groups": [{"name": "a", "slots": 0, "templates": [["ssn"]]}]},
            "slots >= 1",
        ),
        ({"name": "x"}, "malformed"),
    ],
)
def test_bad_profiles_are_refused_with_a_reason(profile: object, message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        load_profile(profile)  # type: ignore[arg-type]


def test_group_slices_tile_the_row() -> None:
    profile = load_profile("standard")
    slices = profile.group_slices
    assert slices[0][0] == 0 and slices[-1][1] == profile.slots
    assert all(a[1] == b[0] for a, b in pairwise(slices))


def test_a_person_with_several_records_gets_each_groups_smallest_tokens_of_their_union() -> None:
    profile = load_profile("standard")
    today = dt.date(2026, 6, 30)
    records = [
        normalize_person(person(first_name="Jon", dob="2004-07-03"), today=today),
        normalize_person(person(last_name="Smyth", ssn=""), today=today),
    ]
    row = profile.row_tokens(records)
    assert len(row) == profile.slots
    for group, (s, e) in zip(profile.groups, profile.group_slices, strict=True):
        union = set(group.tokens(records[0])) | set(group.tokens(records[1]))
        expected = sorted(union)[: group.slots]
        assert row[s:e] == [*expected, *[None] * (group.slots - len(expected))]
    # Both records contribute: the first's short first name, the second's surname.
    assert any(t and "\x1fJON\x1e" in t for t in row)
    assert any(t and "SMYTH" in t for t in row)


@pytest.mark.parametrize(
    "template", [["dob"], ["ssn"], ["zip", "street"], ["dob", "birth_year"], ["first", "sex"]]
)
def test_a_template_of_one_identifier_is_refused(template: list[str]) -> None:
    profile = {"name": "x", "groups": [{"name": "a", "slots": 1, "templates": [template]}]}
    with pytest.raises(InvalidSpec, match="at least two"):
        load_profile(profile)


def test_every_built_in_profile_combines_two_identifiers_per_token() -> None:
    for name in PROFILES:
        for group in load_profile(name).groups:
            assert all(len(template_identifiers(t)) >= 2 for t in group.templates), group.name


def test_two_errors_in_one_record_still_agree_on_some_group() -> None:
    # A typo in the first name and the birth year off by one; the surname respelled too.
    changed = person(first_name="Wiliam", dob="2003-03-07", last_name="O'Neal-Garcia")
    assert agreeing(person(first_name="William"), changed)
    # Names swapped and each mistyped, DOB and address intact.
    swapped = person(first_name="Oneil-Garcia", last_name="Bil", address="12 Main St")
    assert agreeing(person(address="12 Main St"), swapped)


def test_a_repaired_dob_agrees_with_the_date_it_meant() -> None:
    assert "name_dob" in agreeing(person(dob="2004-12-30"), person(dob="2004-30-12"))


def test_a_transposed_ssn_still_agrees() -> None:
    assert "ssn_digits_year" in agreeing(person(), person(ssn="123-54-6780"))


def test_extracts_without_dob_get_the_profile_without_dob() -> None:
    assert profile_for_fields({"first_name", "dob"}, {"first_name", "dob", "ssn"}) == "standard"
    assert profile_for_fields({"first_name", "dob"}, {"first_name", "ssn"}) == "no_dob"
    assert all("dob" not in t for g in load_profile("no_dob").groups for t in g.templates)


def pattern(profile: KeyProfile, a: PersonRecord, b: PersonRecord) -> set[str]:
    """Groups two records agree on, paired groups included (what the joiner computes)."""
    today = dt.date(2026, 6, 30)
    rows = [profile.row_tokens([normalize_person(r, today=today)]) for r in (a, b)]
    ids = clear_token_ids(rows)
    bits = int(
        agreement_patterns(
            ids[:1], ids[1:], *([0],) * 2, profile.group_slices, profile.paired_slices
        )[0]
    )
    return {g.name for i, g in enumerate(profile.groups) if bits >> i & 1}


@pytest.mark.parametrize("first", ["", "Baby", "Unknown", "FNU"])
def test_a_record_without_a_first_name_agrees_with_one_that_has_it(first: str) -> None:
    profile = load_profile("standard")
    known = person(address="12 Main St")
    found = pattern(profile, person(first_name=first, address="12 Main St"), known)
    assert "no_first_dob_place" in found
    assert "last_dob_place" not in found  # the plain group is only for records with a first name
    bits = sum(1 << i for i, g in enumerate(profile.groups) if g.name in found)
    assert profile.comparison.may_link(np.array([bits])).tolist() == [True]


def test_twins_with_first_names_agree_only_on_the_plain_group_and_never_link() -> None:
    profile = load_profile("standard")
    twin = person(first_name="Maria", sex="F", ssn="123-45-6781")  # consecutive SSN
    found = pattern(profile, person(first_name="Jonathan"), twin)
    assert found == {"last_dob_place"}
    bits = 1 << [g.name for g in profile.groups].index("last_dob_place")
    assert profile.comparison.may_link(np.array([bits])).tolist() == [False]


def test_a_person_row_never_shows_a_paired_token_twice() -> None:
    profile = load_profile("standard")
    today = dt.date(2026, 6, 30)
    records = [normalize_person(person(first_name=f), today=today) for f in ("Jonathan", "")]
    row = [t for t in profile.row_tokens(records) if t is not None]
    assert len(row) == len(set(row))
    # The token stays in the group for records with a first name.
    names = dict(zip((g.name for g in profile.groups), profile.group_slices, strict=True))
    s, e = names["no_first_dob_place"]
    assert profile.row_tokens(records)[s:e] == [None, None]


@pytest.mark.parametrize(
    "groups",
    [
        # Partner unknown.
        [{"name": "x", "slots": 1, "templates": [["last", "dob"]], "absent": "first",
          "pairs_with": "nope"}],
        # Partner reads other templates.
        [{"name": "y", "slots": 1, "templates": [["last", "zip"]], "present": "first"},
         {"name": "x", "slots": 1, "templates": [["last", "dob"]], "absent": "first",
          "pairs_with": "y"}],
        # Both groups can hold the same record's token.
        [{"name": "y", "slots": 1, "templates": [["last", "dob"]]},
         {"name": "x", "slots": 1, "templates": [["last", "dob"]], "absent": "first",
          "pairs_with": "y"}],
    ],
)  # fmt: skip
def test_a_pairing_that_could_show_a_token_twice_is_refused(
    groups: list[dict[str, object]],
) -> None:
    with pytest.raises(InvalidSpec, match="pairs with"):
        load_profile({"name": "p", "groups": groups})


def test_a_group_conditional_on_an_unknown_field_is_refused() -> None:
    group = {"name": "a", "slots": 1, "templates": [["last", "dob"]], "present": "shoe_size"}
    with pytest.raises(InvalidSpec, match="unknown field 'shoe_size'"):
        load_profile({"name": "p", "groups": [group]})
