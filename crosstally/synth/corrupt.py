"""Apply data-entry errors to copies of true identities, vectorized over records.

Which records get which error is drawn with numpy; only the affected strings are rewritten in
Python, so corrupting a million records costs a few seconds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crosstally.synth import dates, reference
from crosstally.synth.errors import ErrorKind, ErrorRates
from crosstally.synth.population import People, ssn_text, street_addresses
from crosstally.synth.reference import BoolArray, IntArray, ObjectArray

ErrorArray = npt.NDArray[np.uint64]
PLACEHOLDER_SSNS = ("999-99-9999", "123-45-6789", "000-00-0000")
_KEYBOARD = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBORS = {
    ch: "".join(
        row2[j]
        for row2_i, row2 in enumerate(_KEYBOARD)
        if abs(row2_i - i) <= 1
        for j in range(max(0, col - 1), min(len(row2), col + 2))
        if row2[j] != ch
    )
    for i, row in enumerate(_KEYBOARD)
    for col, ch in enumerate(row)
}
_LONG_SUFFIX = {"St": "Street", "Ave": "Avenue", "Rd": "Road", "Dr": "Drive", "Ln": "Lane",
                "Ct": "Court", "Pl": "Place", "Ter": "Terrace", "Way": "Way"}  # fmt: skip
_SUFFIX_PATTERN = re.compile(r" (St|Ave|Rd|Dr|Ln|Ct|Pl|Ter|Way)\b")


@dataclass
class IdentityColumns:
    """Canonical identity columns of some records, as strings ('' when missing)."""

    first_name: ObjectArray
    middle_name: ObjectArray
    last_name: ObjectArray
    suffix: ObjectArray
    dob: ObjectArray
    sex: ObjectArray
    ssn: ObjectArray
    zip: ObjectArray
    town: ObjectArray
    address: ObjectArray
    race: ObjectArray
    ethnicity: ObjectArray

    @classmethod
    def of(cls, people: People, rows: IntArray) -> IdentityColumns:
        """Copies of the true identities of people `rows`."""
        towns = reference.towns()
        town_index = people.town_index[rows]
        return cls(
            first_name=people.first_name[rows],
            middle_name=people.middle_name[rows],
            last_name=people.last_name[rows],
            suffix=people.suffix[rows],
            dob=people.dob_text[rows],
            sex=people.sex[rows],
            ssn=people.ssn_text[rows],
            zip=towns.zip[town_index],
            town=towns.name[town_index],
            address=people.address[rows],
            race=people.race[rows],
            ethnicity=people.ethnicity[rows],
        )

    def __len__(self) -> int:
        return len(self.first_name)


@dataclass(frozen=True)
class RecordStyle:
    """How an agency's system formats values it holds correctly."""

    upper_case: bool = False
    ssn_dashes: bool = True
    long_street_suffix: bool = False


def corrupt(
    rng: np.random.Generator,
    columns: IdentityColumns,
    people: People,
    rows: IntArray,
    rates: ErrorRates,
) -> ErrorArray:
    """Apply `rates` to `columns` (true identities of `rows`) in place; return error bits."""
    n = len(columns)
    draw = _Draw(rng, np.zeros(n, dtype=np.uint64))
    errors, hit = draw.errors, draw.hit
    _surnames(rng, columns, people, rows, draw, rates)
    nicknames = reference.nicknames()
    has_nick = np.array([s.upper() in nicknames for s in columns.first_name], dtype=bool)
    for i in hit(rates.nickname, ErrorKind.NICKNAME, has_nick).tolist():
        options = nicknames[columns.first_name[i].upper()]
        columns.first_name[i] = options[int(rng.integers(len(options)))]
    for attr, rate, kind in (
        ("first_name", rates.first_typo, ErrorKind.FIRST_TYPO),
        ("last_name", rates.last_typo, ErrorKind.LAST_TYPO),
    ):
        column: ObjectArray = getattr(columns, attr)
        chosen = hit(rate, kind)
        ops, spots, picks = (
            rng.integers(0, 4, len(chosen)),
            rng.random(len(chosen)),
            rng.random(len(chosen)),
        )
        for i, op, spot, pick in zip(
            chosen.tolist(), ops.tolist(), spots.tolist(), picks.tolist(), strict=True
        ):
            column[i] = typo(column[i], op, spot, pick)
    swap = hit(rates.name_swap, ErrorKind.NAME_SWAP)
    columns.first_name[swap], columns.last_name[swap] = (
        columns.last_name[swap],
        columns.first_name[swap],
    )

    has_middle = columns.middle_name != ""
    u = rng.random(n)
    missing = has_middle & (u < rates.middle_missing)
    initial = has_middle & ~missing & (u < rates.middle_missing + rates.middle_initial)
    columns.middle_name[missing] = ""
    columns.middle_name[initial] = [s[0] for s in columns.middle_name[initial]]
    draw.mark(missing, ErrorKind.MIDDLE_MISSING)
    draw.mark(initial, ErrorKind.MIDDLE_INITIAL)
    columns.suffix[hit(rates.suffix_dropped, ErrorKind.SUFFIX_DROPPED, columns.suffix != "")] = ""

    _dobs(draw, columns, people.dob[rows], rates)
    _ssns(draw, columns, people.ssn[rows], rates)

    u = rng.random(n)
    no_sex = u < rates.sex_missing
    wrong = ~no_sex & (u < rates.sex_missing + rates.sex_wrong)
    columns.sex[no_sex] = ""
    columns.sex[wrong] = np.where(columns.sex[wrong] == "F", "M", "F")
    draw.mark(no_sex, ErrorKind.SEX_MISSING)
    draw.mark(wrong, ErrorKind.SEX_WRONG)

    moved = hit(rates.old_address, ErrorKind.OLD_ADDRESS)
    towns = reference.towns()
    new_town = towns.table().draw_index(rng, len(moved))
    columns.town[moved], columns.zip[moved] = towns.name[new_town], towns.zip[new_town]
    columns.address[moved] = street_addresses(rng, new_town)
    columns.zip[hit(rates.zip_missing, ErrorKind.ZIP_MISSING)] = ""
    columns.address[hit(rates.address_missing, ErrorKind.ADDRESS_MISSING)] = ""
    no_race = hit(rates.race_missing, ErrorKind.RACE_MISSING)
    columns.race[no_race] = ""
    columns.ethnicity[no_race] = ""
    return errors


def _surnames(
    rng: np.random.Generator,
    columns: IdentityColumns,
    people: People,
    rows: IntArray,
    draw: _Draw,
    rates: ErrorRates,
) -> None:
    hit = draw.hit
    hyphenated = np.array(["-" in s for s in columns.last_name], dtype=bool)
    chosen = hit(rates.hyphen_partial, ErrorKind.HYPHEN_PARTIAL, hyphenated)
    for i, u in zip(chosen.tolist(), rng.random(len(chosen)).tolist(), strict=True):
        first, _, second = columns.last_name[i].partition("-")
        columns.last_name[i] = first if u < 0.45 else second if u < 0.8 else f"{first} {second}"
    changed = hit(rates.surname_change, ErrorKind.SURNAME_CHANGE)
    pools = reference.surnames()
    for group in np.unique(people.name_group[rows[changed]]).tolist():
        mask = people.name_group[rows[changed]] == group
        columns.last_name[changed[mask]] = pools.draw(rng, int(mask.sum()), str(group))


@dataclass
class _Draw:
    """Draws which records get an error and records the error bits."""

    rng: np.random.Generator
    errors: ErrorArray

    def mark(self, mask: BoolArray, kind: ErrorKind) -> None:
        self.errors[mask] |= np.uint64(kind.value)

    def hit(self, rate: float, kind: ErrorKind, eligible: BoolArray | None = None) -> IntArray:
        """Indices of the records that get error `kind` with probability `rate`."""
        mask = self.rng.random(len(self.errors)) < rate
        if eligible is not None:
            mask &= eligible
        self.mark(mask, kind)
        return np.flatnonzero(mask)


def typo(name: str, op: int, spot: float, pick: float) -> str:
    """One keyboard error: 0 insert, 1 delete, 2 substitute, 3 transpose adjacent letters."""
    letters = [i for i, ch in enumerate(name) if ch.isalpha()]
    if len(letters) < 2:
        return name
    i = letters[min(int(spot * len(letters)), len(letters) - 1)]
    ch = name[i]
    near = _NEIGHBORS.get(ch.lower(), "aeiou")
    new = near[min(int(pick * len(near)), len(near) - 1)]
    new = new.upper() if ch.isupper() else new
    if (
        op == 3
        and i + 1 < len(name)
        and name[i + 1].isalpha()
        and name[i + 1].lower() != ch.lower()
    ):
        out = name[:i] + name[i + 1] + ch + name[i + 2 :]
    elif op == 0:
        out = name[: i + 1] + new.lower() + name[i + 1 :]
    elif op == 1 and len(letters) > 2:
        out = name[:i] + name[i + 1 :]
    else:
        out = name[:i] + new + name[i + 1 :]
    return out[0].upper() + out[1:] if name[0].isupper() else out


def _dobs(draw: _Draw, columns: IdentityColumns, dob: dates.DateArray, rates: ErrorRates) -> None:
    rng, n = draw.rng, len(dob)
    year, month, day = dates.ymd(dob)
    u = rng.random(n)
    swap = (u < rates.dob_day_month) & (day <= 12) & (day != month)
    low = rates.dob_day_month
    typo_mask = (u >= low) & (u < low + rates.dob_typo)
    low += rates.dob_typo
    invalid = (u >= low) & (u < low + rates.dob_invalid)

    columns.dob[swap] = [f"{y:04d}-{d:02d}-{m:02d}" for y, m, d in _parts(year, month, day, swap)]
    draw.mark(swap, ErrorKind.DOB_DAY_MONTH)

    which, step = rng.integers(0, 5, n), np.where(rng.random(n) < 0.5, -1, 1)
    y2 = np.where(which < 2, year + step, year)
    m2 = np.where(which == 4, (month - 1 + step) % 12 + 1, month)
    d2 = np.where((which == 2) | (which == 3), day + step, day)
    d2 = np.where(d2 < 1, 2, d2)
    d2 = np.minimum(d2, dates.days_in_month(y2, m2))
    d2 = np.where((d2 == day) & (m2 == month) & (y2 == year), np.where(day > 1, day - 1, 2), d2)
    columns.dob[typo_mask] = [
        f"{y:04d}-{m:02d}-{d:02d}" for y, m, d in _parts(y2, m2, d2, typo_mask)
    ]
    draw.mark(typo_mask, ErrorKind.DOB_TYPO)

    style = rng.random(n)
    last = dates.days_in_month(year, month)
    bad = []
    for y, m, d, s, end in zip(
        year[invalid].tolist(), month[invalid].tolist(), day[invalid].tolist(),
        style[invalid].tolist(), last[invalid].tolist(), strict=True,
    ):  # fmt: skip
        if s < 0.4:
            bad.append(f"{y:04d}-{m:02d}-{end + 1:02d}")
        elif s < 0.85:
            bad.append(f"{m:02d}/{d:02d}/{y:04d}")
        else:
            bad.append(f"{y:04d}{m:02d}{d:02d}")
    columns.dob[invalid] = bad
    draw.mark(invalid, ErrorKind.DOB_INVALID)


def _parts(
    year: IntArray, month: IntArray, day: IntArray, mask: BoolArray
) -> zip[tuple[int, int, int]]:
    return zip(year[mask].tolist(), month[mask].tolist(), day[mask].tolist(), strict=True)


def _ssns(draw: _Draw, columns: IdentityColumns, ssn: IntArray, rates: ErrorRates) -> None:
    rng, n = draw.rng, len(ssn)
    u = rng.random(n)
    missing = u < rates.ssn_missing
    low = rates.ssn_missing
    placeholder = (u >= low) & (u < low + rates.ssn_placeholder)
    low += rates.ssn_placeholder
    mistyped = (u >= low) & (u < low + rates.ssn_typo)

    digits = [f"{v:09d}" for v in ssn[mistyped].tolist()]
    spots, news = rng.integers(0, 9, len(digits)), rng.integers(1, 10, len(digits))
    transpose = rng.random(len(digits)) < 0.3
    typed = []
    for text, spot, new, swap in zip(
        digits, spots.tolist(), news.tolist(), transpose.tolist(), strict=True
    ):
        if swap and spot < 8 and text[spot] != text[spot + 1]:
            text = text[:spot] + text[spot + 1] + text[spot] + text[spot + 2 :]
        else:
            text = text[:spot] + str((int(text[spot]) + new) % 10) + text[spot + 1 :]
        typed.append(int(text))
    columns.ssn[mistyped] = ssn_text(np.array(typed, dtype=np.int64))
    choice = rng.choice(len(PLACEHOLDER_SSNS), int(placeholder.sum()), p=[0.5, 0.3, 0.2])
    columns.ssn[placeholder] = np.array(PLACEHOLDER_SSNS, dtype=object)[choice]
    columns.ssn[missing] = ""
    draw.mark(missing, ErrorKind.SSN_MISSING)
    draw.mark(placeholder, ErrorKind.SSN_PLACEHOLDER)
    draw.mark(mistyped, ErrorKind.SSN_TYPO)


def apply_style(columns: IdentityColumns, style: RecordStyle) -> None:
    """Format the columns the way the agency's system stores them."""
    if style.long_street_suffix:
        columns.address[:] = [
            _SUFFIX_PATTERN.sub(lambda m: " " + _LONG_SUFFIX[m.group(1)], a, count=1)
            for a in columns.address
        ]
    if not style.ssn_dashes:
        columns.ssn[:] = [s.replace("-", "") for s in columns.ssn]
    if style.upper_case:
        for name in ("first_name", "middle_name", "last_name", "town", "address"):
            column: ObjectArray = getattr(columns, name)
            column[:] = [s.upper() for s in column]
