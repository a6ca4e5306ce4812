"""Normalize raw identifiers (names, DOB, SSN, sex, ZIP, town, street) for record linkage."""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass

from nicknames import NickNamer
from unidecode import unidecode

from protocol.records import NormalizedPerson, PersonRecord

# Values agencies type when a name (or town/street) is not known; they mean "missing".
_PLACEHOLDERS = frozenset(
    {
        "UNKNOWN", "UNK", "NONE", "NA", "NULL", "FNU", "LNU", "NFN", "NLN", "NMN",
        "BABY", "BABYBOY", "BABYGIRL", "BABYA", "BABYB", "BB", "BG", "INFANT", "INFANTBOY",
        "INFANTGIRL", "NEWBORN", "BOY", "GIRL", "MALE", "FEMALE", "CHILD", "MINOR", "UNNAMED",
        "NONAME", "NOFIRSTNAME", "NOLASTNAME", "OCCUPANT", "RESIDENT", "CURRENTRESIDENT",
        "TEST", "XXX", "XX",
    }
)  # fmt: skip
_SUFFIXES = frozenset({"JR", "SR", "II", "III", "IV", "V"})
# Surname particles only make sense joined to the word that follows them.
_PARTICLES = frozenset(
    {
        "DA", "DAL", "DAS", "DE", "DEL", "DELA", "DELLA", "DEN", "DER", "DI", "DO", "DOS",
        "DU", "LA", "LAS", "LOS", "MAC", "MC", "ST", "TER", "VAN", "VANDER", "VON",
    }
)  # fmt: skip
_WORD = re.compile(r"[A-Z]+")
_APOSTROPHES = re.compile(r"['`]")
# Characters that OCR and hurried typing put inside names for the letter they resemble
# ("Wi11iams", "J0nes", "Sm|th"). Only a run that also holds a letter is read this way.
_LOOKALIKE = str.maketrans({"0": "O", "1": "L", "|": "L", "!": "I", "5": "S", "8": "B", "$": "S"})
_NAME_RUN = re.compile(r"[A-Z0-9|!$]+")
_LETTER = re.compile(r"[A-Z]")


def _letters_for_lookalikes(text: str) -> str:
    return _NAME_RUN.sub(
        lambda m: m[0].translate(_LOOKALIKE) if _LETTER.search(m[0]) else m[0], text
    )


def _ascii_upper(raw: str) -> str:
    return str(unidecode(raw)).upper()


def _name_words(raw: str | None) -> list[str]:
    """A-Z words of a name, apostrophes joined and a trailing generational suffix dropped."""
    if raw is None:
        return []
    words = _WORD.findall(_letters_for_lookalikes(_APOSTROPHES.sub("", _ascii_upper(raw))))
    # Only a separate trailing word is a suffix; a lone "V" may be the whole name.
    while len(words) > 1 and words[-1] in _SUFFIXES:
        words.pop()
    return words


def _compact(words: list[str]) -> str | None:
    text = "".join(words)
    if not text or text in _PLACEHOLDERS:
        return None
    return text


def normalize_name(raw: str | None) -> str | None:
    """ASCII, uppercase, suffix-free, separator-free A-Z name; None when empty or a placeholder."""
    return _compact(_name_words(raw))


def surname_parts(raw: str | None) -> tuple[str, ...]:
    """Parts of a multi-part surname; particles stay joined to the word after them."""
    words = _name_words(raw)
    if _compact(words) is None:
        return ()
    parts: list[str] = []
    pending: list[str] = []
    for word in words:
        if word in _PARTICLES:
            pending.append(word)
            continue
        if pending:
            # "de la Cruz" gives both "DELACRUZ" and "CRUZ": records spell it either way.
            parts.append("".join([*pending, word]))
            pending = []
        parts.append(word)
    if not parts:  # the whole surname is particles, e.g. "La"
        parts = ["".join(words)]
    return tuple(dict.fromkeys(p for p in parts if len(p) >= 2))


@functools.cache
def _nicknamer() -> NickNamer:
    # Loading the nickname table is slow; build it once, on first use.
    return NickNamer()


# Given names common among people born 1990-2015, most common first. A nickname can
# stand for many formal names (CHRIS: 18 in the nickname table); the common ones are
# kept first so a bounded number of forms still reaches the likely formal name.
_COMMON_GIVEN = [
    "MICHAEL",
    "JACOB",
    "MATTHEW",
    "JOSHUA",
    "CHRISTOPHER",
    "NICHOLAS",
    "ANDREW",
    "JOSEPH",
    "DANIEL",
    "TYLER",
    "WILLIAM",
    "BRANDON",
    "RYAN",
    "JOHN",
    "ZACHARY",
    "DAVID",
    "ANTHONY",
    "JAMES",
    "JUSTIN",
    "ALEXANDER",
    "JONATHAN",
    "CHRISTIAN",
    "AUSTIN",
    "DYLAN",
    "ETHAN",
    "BENJAMIN",
    "NOAH",
    "SAMUEL",
    "ROBERT",
    "NATHAN",
    "CAMERON",
    "KEVIN",
    "THOMAS",
    "JOSE",
    "HUNTER",
    "JORDAN",
    "KYLE",
    "CALEB",
    "JASON",
    "LOGAN",
    "AARON",
    "ERIC",
    "BRIAN",
    "GABRIEL",
    "ADAM",
    "JACK",
    "ISAIAH",
    "JUAN",
    "LUIS",
    "CONNOR",
    "CHARLES",
    "ELIJAH",
    "ISAAC",
    "STEVEN",
    "EVAN",
    "JARED",
    "SEAN",
    "TIMOTHY",
    "LUKE",
    "CODY",
    "NATHANIEL",
    "ALEX",
    "SETH",
    "MASON",
    "RICHARD",
    "CARLOS",
    "ANGEL",
    "PATRICK",
    "DEVIN",
    "BRYAN",
    "COLE",
    "JACKSON",
    "IAN",
    "GARRETT",
    "TREVOR",
    "JESUS",
    "CHASE",
    "ADRIAN",
    "MARK",
    "BLAKE",
    "SEBASTIAN",
    "ANTONIO",
    "LUCAS",
    "JEREMY",
    "GAVIN",
    "MIGUEL",
    "JULIAN",
    "DALTON",
    "DUSTIN",
    "TRISTAN",
    "JOEL",
    "JESSE",
    "ALEXIS",
    "EDWARD",
    "EMILY",
    "HANNAH",
    "MADISON",
    "ASHLEY",
    "SARAH",
    "ALEXIS",
    "SAMANTHA",
    "JESSICA",
    "ELIZABETH",
    "TAYLOR",
    "LAUREN",
    "ALYSSA",
    "KAYLA",
    "ABIGAIL",
    "BRIANNA",
    "OLIVIA",
    "EMMA",
    "MEGAN",
    "GRACE",
    "VICTORIA",
    "RACHEL",
    "ANNA",
    "SYDNEY",
    "DESTINY",
    "MORGAN",
    "JENNIFER",
    "JASMINE",
    "HALEY",
    "JULIA",
    "KAITLYN",
    "NICOLE",
    "AMANDA",
    "KATHERINE",
    "NATALIE",
    "HAILEY",
    "ALEXANDRA",
    "SAVANNAH",
    "CHLOE",
    "REBECCA",
    "STEPHANIE",
    "MARIA",
    "SOPHIA",
    "MACKENZIE",
    "ALLISON",
    "ISABELLA",
    "AMBER",
    "MARY",
    "DANIELLE",
    "GABRIELLE",
    "JORDAN",
    "BROOKE",
    "MICHELLE",
    "SIERRA",
    "KATELYN",
    "ANDREA",
    "MADELINE",
    "SARA",
    "KIMBERLY",
    "COURTNEY",
    "ERIN",
    "BRITTANY",
    "VANESSA",
    "JENNA",
    "JACQUELINE",
    "CAROLINE",
    "FAITH",
    "MAKAYLA",
    "BAILEY",
    "PAIGE",
    "SHELBY",
    "MELISSA",
    "KAYLEE",
    "CHRISTINA",
    "TRINITY",
    "MARIAH",
    "CAITLIN",
    "AUTUMN",
    "MARISSA",
    "ANGELA",
    "CATHERINE",
    "ZOE",
    "BREANNA",
    "AVA",
    "CHRISTINE",
    "PATRICIA",
    "KATHRYN",
    "LAURA",
]
_GIVEN_RANK = {name: rank for rank, name in enumerate(dict.fromkeys(_COMMON_GIVEN))}


def first_name_forms(first: str | None, limit: int = 4) -> tuple[str, ...]:
    """The normalized first name, then its canonical forms (common names first), at most `limit`."""
    if limit < 0:
        raise ValueError(f"limit must be 0 or more, got {limit}")
    name = normalize_name(first)
    if name is None:
        return ()
    canonicals = {normalize_name(c) for c in _nicknamer().canonicals_of(name.lower())}
    others = sorted(
        (c for c in canonicals if c is not None and c != name),
        key=lambda c: (_GIVEN_RANK.get(c, len(_GIVEN_RANK)), c),
    )
    return (name, *others)[:limit]


@dataclass(frozen=True)
class DobResult:
    """A parsed date of birth, or None with the reason it was rejected."""

    value: dt.date | None
    issue: str | None


_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
    )
}
# A trailing time of day, as database and spreadsheet exports add to dates.
_TIME = re.compile(
    r"[T ][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?"
    r"(?: ?[AP]M)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?$",
    re.IGNORECASE,
)
_ISO = re.compile(r"(?P<y>[0-9]{4})-(?P<m>[0-9]{1,2})-(?P<d>[0-9]{1,2})")
_COMPACT = re.compile(r"(?P<y>[0-9]{4})(?P<m>[0-9]{2})(?P<d>[0-9]{2})")
_US = re.compile(r"(?P<m>[0-9]{1,2})(?P<sep>[/-])(?P<d>[0-9]{1,2})(?P=sep)(?P<y>[0-9]{4})")
_MON = re.compile(r"(?P<d>[0-9]{1,2})-(?P<mon>[A-Za-z]{3})-(?P<y>[0-9]{4})")
_TWO_DIGIT_YEAR = re.compile(r"[0-9]{1,2}([/-])([0-9]{1,2}|[A-Za-z]{3})\1[0-9]{2}")
_EARLIEST_DOB = dt.date(1900, 1, 1)


def _date_parts(text: str) -> tuple[int, int, int] | None:
    """(year, month, day) from the first known format `text` matches in full."""
    for pattern in (_ISO, _COMPACT, _US):
        if match := pattern.fullmatch(text):
            return int(match["y"]), int(match["m"]), int(match["d"])
    if (match := _MON.fullmatch(text)) and match["mon"].upper() in _MONTHS:
        return int(match["y"]), _MONTHS[match["mon"].upper()], int(match["d"])
    return None


def _shown(text: str) -> str:
    # Keep issue strings short whatever junk the extract holds.
    return text if len(text) <= 40 else text[:37] + "..."


def parse_dob(raw: str | None, *, today: dt.date | None = None) -> DobResult:
    """Parse a date of birth in a known format; never raises, says what was wrong instead."""
    text = (raw or "").strip()
    if not text:
        return DobResult(None, None)
    shown = f"dob '{_shown(text)}'"
    date_text = _TIME.sub("", text, count=1)
    parts = _date_parts(date_text)
    if parts is None:
        if _TWO_DIGIT_YEAR.fullmatch(date_text):
            return DobResult(None, f"{shown} has a 2-digit year (write all 4 digits: YYYY-MM-DD)")
        return DobResult(None, f"{shown} is not in a known format (use YYYY-MM-DD)")
    try:
        value = dt.date(*parts)
    except ValueError:
        return DobResult(None, f"{shown} is not a real date")
    if value > (today or dt.date.today()):
        return DobResult(None, f"{shown} is in the future")
    if value < _EARLIEST_DOB:
        return DobResult(None, f"{shown} is before 1900")
    return DobResult(value, None)


# Characters a keyed or scanned date holds for the digit they resemble ("2O01-O3-1l").
_DATE_LOOKALIKE = str.maketrans(
    {"O": "0", "Q": "0", "D": "0", "I": "1", "L": "1", "|": "1", "!": "1",
     "Z": "2", "S": "5", "G": "6", "T": "7", "B": "8"}
)  # fmt: skip
MAX_DOB_REPAIRS = 3


_US_COMPACT = re.compile(r"(?P<m>[0-9]{2})(?P<d>[0-9]{2})(?P<y>[0-9]{4})")


def _readings(text: str) -> list[tuple[int, int, int]]:
    """(year, month, day) of every known format `text` matches, US compact MMDDYYYY included."""
    out = [parts] if (parts := _date_parts(text)) else []
    if match := _US_COMPACT.fullmatch(text):
        out.append((int(match["y"]), int(match["m"]), int(match["d"])))
    return out


def _first_date(candidates: Iterable[tuple[int, int, int]], limit: dt.date) -> dt.date | None:
    for year, month, day in candidates:
        try:
            value = dt.date(year, month, day)
        except ValueError:
            continue
        if _EARLIEST_DOB <= value <= limit:
            return value
    return None


def dob_repairs(raw: str | None, *, today: dt.date | None = None) -> tuple[dt.date, ...]:
    """Dates a rejected DOB most likely meant, for linkage only (the DOB itself stays missing).

    Entry errors that leave a DOB unreadable although its digits survive: day and month
    keyed in each other's place where the day is over 12 (`2000-30-03`), a letter for the
    digit it resembles (`2OO1-O3-1l`), and US compact `MMDDYYYY` (`0|2319G3`). A date
    with a 2-digit year read as the wrong century lands in the future (`2067` for `1967`).
    A valid DOB has no repairs.
    """
    text = (raw or "").strip()
    if not text or parse_dob(text, today=today).value is not None:
        return ()
    limit = today or dt.date.today()
    date_text = _TIME.sub("", text, count=1)
    found: list[dt.date] = []
    for reading in (date_text, date_text.upper().translate(_DATE_LOOKALIKE)):
        for y, m, d in _readings(reading):
            # As read, then day and month exchanged; a future date, a century earlier.
            value = _first_date(((y, m, d), (y, d, m), (y - 100, m, d), (y - 100, d, m)), limit)
            if value is not None and value not in found:
                found.append(value)
    return tuple(found[:MAX_DOB_REPAIRS])


@dataclass(frozen=True)
class SsnResult:
    """A valid 9-digit SSN, or None with the rule it broke (never echoing the digits)."""

    value: str | None
    issue: str | None


# Numbers printed on sample cards or in advertising, and used as fill-ins ever since.
_KNOWN_FAKE_SSNS = frozenset(
    {"078051120", "219099999", "123456789", *(f"98765432{i}" for i in range(10))}
)
_SSN_SEPARATORS = re.compile(r"[\s-]")
_NINE_DIGITS = re.compile(r"[0-9]{9}")


def _ssn_rule_broken(ssn: str) -> str | None:
    if ssn in _KNOWN_FAKE_SSNS:
        return "ssn is a well-known sample or placeholder number"
    if len(set(ssn)) == 1:
        return "ssn has all digits the same, a placeholder"
    area, group, serial = ssn[:3], ssn[3:5], ssn[5:]
    if area in ("000", "666"):
        return f"ssn area {area} is never issued"
    if area[0] == "9":
        return "ssn area 900-999 is never issued"
    if group == "00":
        return "ssn group 00 is never issued"
    if serial == "0000":
        return "ssn serial 0000 is never issued"
    return None


def normalize_ssn(raw: str | None) -> SsnResult:
    """The 9-digit SSN if it could have been issued; spaces and dashes are ignored."""
    text = (raw or "").strip()
    if not text:
        return SsnResult(None, None)
    digits = _SSN_SEPARATORS.sub("", text)
    if not _NINE_DIGITS.fullmatch(digits):
        return SsnResult(None, "ssn must be exactly 9 digits (spaces and dashes are ignored)")
    issue = _ssn_rule_broken(digits)
    return SsnResult(None, issue) if issue else SsnResult(digits, None)


_SEX_CODES = {
    "M": "M",
    "MALE": "M",
    "F": "F",
    "FEMALE": "F",
    "X": "X",
    "NONBINARY": "X",
    "OTHER": "X",
}
_SEX_UNKNOWN = frozenset({"U", "UNK", "UNKNOWN", "NA", "NONE", "NULL"})


def _sex_key(raw: str | None) -> str:
    return re.sub(r"[^A-Z0-9]", "", (raw or "").upper())


def normalize_sex(raw: str | None) -> str | None:
    """M, F or X; anything else (unknown, digit codes) is None."""
    # Digit codes differ between agencies (1 may be male or female), so they are not guessed.
    return _SEX_CODES.get(_sex_key(raw))


_ZIP = re.compile(r"(?P<zip>[0-9]{4,5})(?:[-\s]?[0-9]{4})?")


def normalize_zip(raw: str | None) -> str | None:
    """The 5-digit ZIP of a ZIP or ZIP+4; a 4-digit ZIP gets back its lost leading zero."""
    match = _ZIP.fullmatch((raw or "").strip())
    if match is None:
        return None
    # Spreadsheets read ZIPs as numbers and drop the leading 0 of New England ZIPs.
    zip5 = match["zip"].zfill(5)
    return None if zip5 == "00000" else zip5


def normalize_town(raw: str | None) -> str | None:
    """Compact uppercase A-Z town name, e.g. "West Hartford" -> "WESTHARTFORD"."""
    if raw is None:
        return None
    return _compact(_WORD.findall(_APOSTROPHES.sub("", _ascii_upper(raw))))


_STREET_SUFFIXES = {
    "STREET": "ST",
    "STR": "ST",
    "AVENUE": "AVE",
    "AV": "AVE",
    "ROAD": "RD",
    "DRIVE": "DR",
    "LANE": "LN",
    "COURT": "CT",
    "BOULEVARD": "BLVD",
    "PLACE": "PL",
    "TERRACE": "TER",
    "TERR": "TER",
}
_UNIT_WORDS = frozenset({"APT", "APARTMENT", "UNIT", "STE", "SUITE", "FL", "FLOOR", "RM", "ROOM"})
_STREET_WORD = re.compile(r"[A-Z0-9]+")


def normalize_street(raw: str | None) -> str | None:
    """House number and compact street name with unified suffixes; the unit part is dropped."""
    if raw is None:
        return None
    # Everything from "#" on is a unit number ("12 Main St #4").
    text = _APOSTROPHES.sub("", _ascii_upper(raw)).split("#", 1)[0]
    words: list[str] = []
    for word in _STREET_WORD.findall(text):
        if word in _UNIT_WORDS and words:
            break
        words.append(_STREET_SUFFIXES.get(word, word))
    return _compact(words)


def _field_issue(field: str, issue: str | None) -> tuple[str, ...]:
    # "dob '1850-01-01' is before 1900" -> "dob: '1850-01-01' is before 1900"
    if issue is None:
        return ()
    return (f"{field}: {issue.removeprefix(field + ' ')}",)


def _value_issues(record: PersonRecord) -> tuple[str, ...]:
    """Issues for present values that were not recognized (none echo the value)."""
    issues: list[str] = []
    sex = record.value("sex")
    if sex and normalize_sex(sex) is None and _sex_key(sex) not in _SEX_UNKNOWN:
        issues.append("sex: not a recognized code (use M, F or X)")
    zip_code = record.value("zip")
    if zip_code and normalize_zip(zip_code) is None:
        issues.append("zip: not a 5-digit ZIP or ZIP+4")
    return tuple(issues)


def normalize_person(record: PersonRecord, *, today: dt.date | None = None) -> NormalizedPerson:
    """Normalize every identifier of a record; swapped first/last names are left for linkage."""
    dob = parse_dob(record.dob, today=today)
    ssn = normalize_ssn(record.ssn)
    return NormalizedPerson(
        first=normalize_name(record.first_name),
        middle=normalize_name(record.middle_name),
        last=normalize_name(record.last_name),
        last_parts=surname_parts(record.last_name),
        first_forms=first_name_forms(record.first_name),
        dob=dob.value,
        dob_repairs=dob_repairs(record.dob, today=today) if dob.issue else (),
        sex=normalize_sex(record.sex),
        ssn=ssn.value,
        zip=normalize_zip(record.zip),
        town=normalize_town(record.town),
        street=normalize_street(record.address),
        issues=(
            *_field_issue("dob", dob.issue),
            *_field_issue("ssn", ssn.issue),
            *_value_issues(record),
        ),
    )
