"""Tests for protocol.linkage.normalize: worked examples per rule, plus hypothesis properties."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.linkage.normalize import (
    DobResult,
    SsnResult,
    dob_repairs,
    first_name_forms,
    normalize_name,
    normalize_person,
    normalize_sex,
    normalize_ssn,
    normalize_street,
    normalize_town,
    normalize_zip,
    parse_dob,
    surname_parts,
)
from protocol.records import PersonRecord

TODAY = dt.date(2024, 6, 1)


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Smith", "SMITH"),
        ("  smith  ", "SMITH"),
        ("Mary-Ann", "MARYANN"),
        ("de la Cruz", "DELACRUZ"),
        ("José", "JOSE"),
        ("Zoë Ñúñez", "ZOENUNEZ"),
        ("Müller", "MULLER"),
        ("O'Brien", "OBRIEN"),
        ("O’Brien", "OBRIEN"),
        ("St. John", "STJOHN"),
        ("Smith, Jr.", "SMITH"),
        ("Smith Sr", "SMITH"),
        ("King III", "KING"),
        ("Henry IV", "HENRY"),
        ("Louis V", "LOUIS"),
        ("Gates II", "GATES"),
        ("V", "V"),  # a lone suffix-like word is the name itself
        ("Junior", "JUNIOR"),  # only the abbreviations are suffixes
        ("Jr Smith", "JRSMITH"),  # only a trailing word is a suffix
    ],
)
def test_normalize_name_examples(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "-",
        "123",
        "UNKNOWN",
        "unknown",
        "None",
        "N/A",
        "NULL",
        "FNU",
        "LNU",
        "Baby",
        "Baby Boy",
        "BABYGIRL",
        "xxx",
    ],
)
def test_normalize_name_placeholders_are_missing(raw: str | None) -> None:
    assert normalize_name(raw) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Garcia-Lopez", ("GARCIA", "LOPEZ")),
        ("Garcia Lopez", ("GARCIA", "LOPEZ")),
        ("Smith", ("SMITH",)),
        ("Smith Jr.", ("SMITH",)),
        ("de la Cruz", ("DELACRUZ", "CRUZ")),
        ("Van Buren", ("VANBUREN", "BUREN")),
        ("Mc Donald", ("MCDONALD", "DONALD")),
        ("McDonald", ("MCDONALD",)),
        ("Ruiz de la Torre", ("RUIZ", "DELATORRE", "TORRE")),
        ("Lee-Lee", ("LEE",)),
        ("La", ("LA",)),
        ("Ng-O", ("NG",)),
        (None, ()),
        ("", ()),
        ("Unknown", ()),
    ],
)
def test_surname_parts(raw: str | None, expected: tuple[str, ...]) -> None:
    assert surname_parts(raw) == expected


@pytest.mark.parametrize(
    ("first", "canonical"),
    [("Bill", "WILLIAM"), ("bob", "ROBERT"), ("Liz", "ELIZABETH")],
)
def test_first_name_forms_nicknames(first: str, canonical: str) -> None:
    forms = first_name_forms(first)
    assert forms[0] == normalize_name(first)
    assert canonical in forms
    assert len(forms) <= 4
    assert len(set(forms)) == len(forms)


@pytest.mark.parametrize(
    ("nickname", "formal"),
    [("Chris", "Christopher"), ("Will", "William"), ("Sam", "Samuel"), ("Kate", "Katherine")],
)
def test_nickname_reaches_common_formal_name_within_limit(nickname: str, formal: str) -> None:
    # CHRIS has 18 canonical forms in the table; the common formal names come first.
    assert set(first_name_forms(nickname)) & set(first_name_forms(formal))


@pytest.mark.parametrize("first", ["William", "Robert", "Elizabeth"])
def test_first_name_forms_canonical_name_comes_first(first: str) -> None:
    forms = first_name_forms(first)
    assert forms[0] == first.upper()
    assert forms == first_name_forms(first.lower())  # deterministic, case-insensitive


def test_first_name_forms_limit_and_missing() -> None:
    assert first_name_forms("Bill", limit=1) == ("BILL",)
    assert first_name_forms("Bill", limit=0) == ()
    assert first_name_forms("Zzyzx") == ("ZZYZX",)
    assert first_name_forms(None) == ()
    assert first_name_forms("FNU") == ()
    with pytest.raises(ValueError, match="limit"):
        first_name_forms("Bill", limit=-1)


# --- dates of birth ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "1990-03-04",
        "1990-3-4",
        "1990-03-04T00:00:00",
        "1990-03-04 00:00:00",
        "1990-03-04 13:45:10.123",
        "19900304",
        "03/04/1990",
        "3/4/1990",
        "03-04-1990",
        "04-Mar-1990",
        "04-MAR-1990",
        "03/04/1990 12:00:00 AM",
        " 1990-03-04 ",
    ],
)
def test_parse_dob_formats(raw: str) -> None:
    assert parse_dob(raw, today=TODAY) == DobResult(dt.date(1990, 3, 4), None)


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("2001-02-30", "dob '2001-02-30' is not a real date"),
        ("2001-02-29", "dob '2001-02-29' is not a real date"),
        ("02/30/2001", "dob '02/30/2001' is not a real date"),
        ("1990-13-01", "dob '1990-13-01' is not a real date"),
        ("31-Foo-1990", "dob '31-Foo-1990' is not in a known format (use YYYY-MM-DD)"),
        ("3000-01-01", "dob '3000-01-01' is in the future"),
        ("2024-06-02", "dob '2024-06-02' is in the future"),
        ("1850-01-01", "dob '1850-01-01' is before 1900"),
        ("abc", "dob 'abc' is not in a known format (use YYYY-MM-DD)"),
        ("1990/03/04", "dob '1990/03/04' is not in a known format (use YYYY-MM-DD)"),
    ],
)
def test_parse_dob_rejects_with_reason(raw: str, issue: str) -> None:
    assert parse_dob(raw, today=TODAY) == DobResult(None, issue)


@pytest.mark.parametrize("raw", ["03/04/90", "3-4-90", "04-MAR-90", "04-Mar-90"])
def test_parse_dob_rejects_two_digit_years(raw: str) -> None:
    result = parse_dob(raw, today=TODAY)
    assert result.value is None
    assert result.issue is not None and "2-digit year" in result.issue


def test_parse_dob_leap_day_and_boundaries() -> None:
    assert parse_dob("2000-02-29", today=TODAY).value == dt.date(2000, 2, 29)
    assert parse_dob("1900-01-01", today=TODAY).value == dt.date(1900, 1, 1)
    assert parse_dob("2024-06-01", today=TODAY).value == TODAY
    assert parse_dob("1899-12-31", today=TODAY).value is None


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_parse_dob_missing_is_not_an_issue(raw: str | None) -> None:
    assert parse_dob(raw) == DobResult(None, None)


def test_parse_dob_truncates_long_junk_in_issue() -> None:
    issue = parse_dob("x" * 500).issue
    assert issue is not None and len(issue) < 120


# --- SSNs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["123-45-6780", "123456780", "123 45 6780", " 123-45-6780 "])
def test_normalize_ssn_valid(raw: str) -> None:
    assert normalize_ssn(raw) == SsnResult("123456780", None)


@pytest.mark.parametrize(
    ("raw", "issue"),
    [
        ("000-12-3456", "ssn area 000 is never issued"),
        ("666-12-3456", "ssn area 666 is never issued"),
        ("900-12-3456", "ssn area 900-999 is never issued"),
        ("999-12-3456", "ssn area 900-999 is never issued"),
        ("123-00-4567", "ssn group 00 is never issued"),
        ("123-45-0000", "ssn serial 0000 is never issued"),
        ("078-05-1120", "ssn is a well-known sample or placeholder number"),
        ("219-09-9999", "ssn is a well-known sample or placeholder number"),
        ("123-45-6789", "ssn is a well-known sample or placeholder number"),
        ("987-65-4320", "ssn is a well-known sample or placeholder number"),
        ("987-65-4329", "ssn is a well-known sample or placeholder number"),
        ("111-11-1111", "ssn has all digits the same, a placeholder"),
        ("888888888", "ssn has all digits the same, a placeholder"),
        ("12345678", "ssn must be exactly 9 digits (spaces and dashes are ignored)"),
        ("1234567890", "ssn must be exactly 9 digits (spaces and dashes are ignored)"),
        ("12A-45-6780", "ssn must be exactly 9 digits (spaces and dashes are ignored)"),
        ("123.45.6780", "ssn must be exactly 9 digits (spaces and dashes are ignored)"),
    ],
)
def test_normalize_ssn_rules(raw: str, issue: str) -> None:
    assert normalize_ssn(raw) == SsnResult(None, issue)


def test_normalize_ssn_never_echoes_digits() -> None:
    for raw in ["912-34-5678", "123-45-678", "555-00-1234"]:
        issue = normalize_ssn(raw).issue
        assert issue is not None and "5678" not in issue and "1234" not in issue


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_normalize_ssn_missing(raw: str | None) -> None:
    assert normalize_ssn(raw) == SsnResult(None, None)


# --- sex, ZIP, town, street ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("M", "M"),
        ("m", "M"),
        ("Male", "M"),
        ("F", "F"),
        ("female", "F"),
        ("X", "X"),
        ("Nonbinary", "X"),
        ("non-binary", "X"),
        ("Other", "X"),
        ("U", None),
        ("Unknown", None),
        ("1", None),
        ("2", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_sex(raw: str | None, expected: str | None) -> None:
    assert normalize_sex(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("06106", "06106"),
        ("6106", "06106"),
        ("06106-1234", "06106"),
        ("061061234", "06106"),
        ("6106-1234", "06106"),
        (" 10001 ", "10001"),
        ("00000", None),
        ("0000", None),
        ("abcde", None),
        ("123", None),
        ("1234567", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_zip(raw: str | None, expected: str | None) -> None:
    assert normalize_zip(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("West Hartford", "WESTHARTFORD"),
        ("west  hartford", "WESTHARTFORD"),
        ("Wilkes-Barre", "WILKESBARRE"),
        ("Coeur d'Alene", "COEURDALENE"),
        ("Española", "ESPANOLA"),
        ("Unknown", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_town(raw: str | None, expected: str | None) -> None:
    assert normalize_town(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12 Main Street Apt 4", "12MAINST"),
        ("12 Main St.", "12MAINST"),
        ("12 main st, apt. 4B", "12MAINST"),
        ("12 Main St #4", "12MAINST"),
        ("7 Oak Avenue Unit 2", "7OAKAVE"),
        ("7 Oak Ave Suite 200", "7OAKAVE"),
        ("5 Farm Road", "5FARMRD"),
        ("5 Hill Drive Floor 2", "5HILLDR"),
        ("9 Cherry Lane", "9CHERRYLN"),
        ("3 Kings Court", "3KINGSCT"),
        ("100 Sunset Boulevard", "100SUNSETBLVD"),
        ("8 Elm Place", "8ELMPL"),
        ("2 Ridge Terrace", "2RIDGETER"),
        ("", None),
        (None, None),
    ],
)
def test_normalize_street(raw: str | None, expected: str | None) -> None:
    assert normalize_street(raw) == expected


# --- whole records -------------------------------------------------------------------------


def test_normalize_person_clean_record() -> None:
    record = PersonRecord(
        record_id="r1",
        first_name="Bill",
        middle_name="J.",
        last_name="García-López Jr.",
        dob="03/04/1990",
        sex="male",
        ssn="123-45-6780",
        zip="6106",
        town="West Hartford",
        address="12 Main Street Apt 4",
    )
    person = normalize_person(record, today=TODAY)
    assert person.first == "BILL"
    assert person.middle == "J"
    assert person.last == "GARCIALOPEZ"
    assert person.last_parts == ("GARCIA", "LOPEZ")
    assert person.first_forms == first_name_forms("Bill")
    assert "WILLIAM" in person.first_forms
    assert person.dob == dt.date(1990, 3, 4)
    assert (person.sex, person.ssn, person.zip) == ("M", "123456780", "06106")
    assert (person.town, person.street) == ("WESTHARTFORD", "12MAINST")
    assert person.issues == ()


def test_normalize_person_reports_issues_by_field() -> None:
    record = PersonRecord(
        record_id="r2",
        first_name="FNU",
        last_name="Smith",
        dob="2001-02-30",
        sex="Q",
        ssn="666-12-3456",
        zip="abc",
    )
    person = normalize_person(record, today=TODAY)
    assert person.first is None and person.first_forms == ()
    assert (person.dob, person.ssn, person.sex, person.zip) == (None, None, None, None)
    assert person.issues == (
        "dob: '2001-02-30' is not a real date",
        "ssn: area 666 is never issued",
        "sex: not a recognized code (use M, F or X)",
        "zip: not a 5-digit ZIP or ZIP+4",
    )
    assert not any("3456" in issue for issue in person.issues)


def test_normalize_person_missing_values_are_not_issues() -> None:
    person = normalize_person(PersonRecord(record_id="r3", sex="U"), today=TODAY)
    assert person.issues == ()
    assert person.last_parts == () and person.street is None


def test_normalize_person_does_not_unswap_names() -> None:
    person = normalize_person(PersonRecord(record_id="r4", first_name="Smith", last_name="John"))
    assert (person.first, person.last) == ("SMITH", "JOHN")


# --- properties ----------------------------------------------------------------------------

_A_TO_Z = re.compile(r"[A-Z]+")


@settings(max_examples=300)
@given(st.one_of(st.none(), st.text()))
def test_normalize_name_is_idempotent_and_a_to_z(raw: str | None) -> None:
    name = normalize_name(raw)
    assert name is None or _A_TO_Z.fullmatch(name)
    assert normalize_name(name) == name


@settings(max_examples=300)
@given(st.one_of(st.none(), st.text()))
def test_parse_dob_never_raises(raw: str | None) -> None:
    result = parse_dob(raw, today=TODAY)
    assert (result.value is None) or (result.issue is None)


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY))
def test_parse_dob_round_trips(day: dt.date) -> None:
    assert parse_dob(day.isoformat(), today=TODAY) == DobResult(day, None)
    assert parse_dob(day.strftime("%m/%d/%Y"), today=TODAY) == DobResult(day, None)


def _could_be_issued(ssn: str) -> bool:
    """An independent restatement of the SSN rules, as an oracle."""
    fakes = {"078051120", "219099999", "123456789"} | {f"98765432{i}" for i in range(10)}
    area, group, serial = int(ssn[:3]), ssn[3:5], ssn[5:]
    return (
        area not in (0, 666)
        and area < 900
        and group != "00"
        and serial != "0000"
        and ssn not in fakes
        and len(set(ssn)) > 1
    )


@settings(max_examples=300)
@given(
    st.one_of(
        st.none(),
        st.text(),
        st.from_regex(r"\A[0-9]{3}[- ]?[0-9]{2}[- ]?[0-9]{4}\Z"),
    )
)
def test_normalize_ssn_never_raises_and_values_pass_rules(raw: str | None) -> None:
    result = normalize_ssn(raw)
    if raw is None or not raw.strip():
        assert result == SsnResult(None, None)
    else:  # exactly one of a value or the reason there is none
        assert (result.value is None) != (result.issue is None)
    if result.value is not None:
        assert re.fullmatch(r"[0-9]{9}", result.value)
        assert _could_be_issued(result.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2000-30-03", (dt.date(2000, 3, 30),)),  # day and month exchanged, day over 12
        ("2OO1-O3-1l", (dt.date(2001, 3, 11),)),  # letters for the digits they resemble
        ("0|2319G3", (dt.date(1963, 1, 23),)),  # MMDDYYYY with OCR characters
        ("2067-04-05", (dt.date(1967, 4, 5),)),  # a century too late: in the future
        ("2004-03-07", ()),  # a valid DOB needs no repair
        ("13/25/2001", ()),  # nothing plausible
        ("", ()),
    ],
)
def test_dob_repairs_propose_what_a_rejected_dob_meant(
    raw: str, expected: tuple[dt.date, ...]
) -> None:
    assert dob_repairs(raw, today=dt.date(2026, 6, 30)) == expected


def test_a_repaired_dob_stays_missing_and_reported() -> None:
    person = normalize_person(PersonRecord(record_id="r", dob="2000-30-03"), today=TODAY)
    assert person.dob is None
    assert person.dob_repairs == (dt.date(2000, 3, 30),)
    assert any(issue.startswith("dob:") for issue in person.issues)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("Wi11iams", "WILLIAMS"), ("J0nes", "JONES"), ("5mith", "SMITH"), ("O'Brien", "OBRIEN")],
)
def test_lookalike_characters_inside_names_are_read_as_letters(raw: str, expected: str) -> None:
    assert normalize_name(raw) == expected


@pytest.mark.parametrize("raw", ["Baby Girl", "Infant", "INFANT BOY", "Occupant", "Unknown", "NFN"])
def test_placeholder_given_names_count_as_missing(raw: str) -> None:
    assert normalize_name(raw) is None
