"""Apply the `realistic` error model (`realistic`) to copies of true identities, vectorized.

Which records, fields and classes get an error is drawn with numpy; only the affected strings
are rewritten in Python. `corrupt_records` is what extract and pair builders call: it runs the
chosen model and the agency's formatting.
"""

from __future__ import annotations

import numpy as np

from crosstally.synth import dates, garble, reference
from crosstally.synth.corrupt import (
    PLACEHOLDER_SSNS,
    ErrorArray,
    IdentityColumns,
    RecordStyle,
    apply_style,
    corrupt,
    typo,
)
from crosstally.synth.errors import ERROR_MODELS, ErrorKind, ErrorRates
from crosstally.synth.population import People, street_addresses
from crosstally.synth.realistic import ABBREVIATION_RATE, FIELDS, CareMix, quality_factor
from crosstally.synth.reference import BoolArray, IntArray, ObjectArray

PLACEHOLDER_FIRST_NAMES = ("Baby", "Infant", "Unknown", "Fnu", "Nfn", "Occupant")
PLACEHOLDER_ZIPS = ("00000", "99999", "06101")
_K = ErrorKind


def corrupt_records(
    model: str,
    rng: np.random.Generator,
    columns: IdentityColumns,
    people: People,
    rows: IntArray,
    rates: ErrorRates,
    style: RecordStyle,
) -> ErrorArray:
    """Corrupt `columns` (true identities of `rows`) by `model`, format them; return error bits."""
    if model == "independent":
        errors = corrupt(rng, columns, people, rows, rates)
        apply_style(columns, style)
        return errors
    if model == "realistic":
        errors = corrupt_realistic(rng, columns, people, rows, rates)
        apply_style(columns, style)
        _vary_street_suffix(rng, columns, errors, ABBREVIATION_RATE * quality_factor(rates))
        return errors
    raise ValueError(f"unknown error model {model!r}; expected one of {', '.join(ERROR_MODELS)}")


def corrupt_realistic(
    rng: np.random.Generator,
    columns: IdentityColumns,
    people: People,
    rows: IntArray,
    rates: ErrorRates,
) -> ErrorArray:
    """Apply the agency's conventions at `rates`, then per-record data-entry errors by care."""
    n = len(columns)
    errors = np.zeros(n, dtype=np.uint64)
    _conventions(rng, columns, rates, errors)
    chosen = _draw_classes(rng, columns, choose_fields(rng, n, rates, columns.ssn != ""))
    fixes = _Fixes(rng, columns, people, rows, errors)
    for kind, index in chosen:
        fixes.apply(kind, index)
    care = np.zeros(n, dtype=np.int64)
    for _, index in chosen:
        care[index] += 1
    errors[care >= 2] |= np.uint64(_K.SEVERAL_ERRORS.value)
    return errors


def choose_fields(
    rng: np.random.Generator, n: int, rates: ErrorRates, ssn_present: BoolArray
) -> list[IntArray]:
    """Per field of `FIELDS`, the records whose field gets a data-entry error.

    Each record's number of errors comes from its care level (`CareMix`); its fields are the
    top ones of weight-plus-Gumbel keys, i.e. drawn by weight without replacement.
    """
    mix = CareMix.of(quality_factor(rates))
    cumulative = np.cumsum(mix.counts)
    count = np.searchsorted(cumulative / cumulative[-1], rng.random(n), side="right")
    dirty = np.flatnonzero(count > 0)
    weights = np.log(np.array([share for _, share, _ in FIELDS]))
    keys = weights + rng.gumbel(size=(len(dirty), len(FIELDS)))
    ssn_field = [name for name, _, _ in FIELDS].index("ssn")
    keys[~ssn_present[dirty], ssn_field] = -np.inf
    order = np.argsort(-keys, axis=1)
    picked = np.arange(len(FIELDS))[None, :] < count[dirty][:, None]
    out = []
    for field in range(len(FIELDS)):
        hit = ((order == field) & picked).any(axis=1)
        out.append(dirty[hit].astype(np.int64))
    return out


def _draw_classes(
    rng: np.random.Generator, columns: IdentityColumns, by_field: list[IntArray]
) -> list[tuple[ErrorKind, IntArray]]:
    """Per field, which class each chosen record gets; inapplicable ones take the first class."""
    applies = _Applies(columns)
    out: list[tuple[ErrorKind, IntArray]] = []
    for (_, _, classes), index in zip(FIELDS, by_field, strict=True):
        shares = np.cumsum([share for _, share in classes])
        pick = np.searchsorted(shares / shares[-1], rng.random(len(index)), side="right")
        pick = np.minimum(pick, len(classes) - 1)
        for k, (kind, _) in enumerate(classes):
            if k > 0:
                ok = applies(kind, index)
                pick[(pick == k) & ~ok] = 0
        for k, (kind, _) in enumerate(classes):
            out.append((kind, index[pick == k]))
    return out


class _Applies:
    """Whether a class can change a record's value (else its field's first class is used)."""

    def __init__(self, columns: IdentityColumns) -> None:
        self.columns = columns

    def __call__(self, kind: ErrorKind, index: IntArray) -> BoolArray:
        c = self.columns
        if kind is _K.NICKNAME:
            nicknames = reference.nicknames()
            return np.array([c.first_name[i].upper() in nicknames for i in index], dtype=bool)
        if kind is _K.DOB_DAY_MONTH:
            return np.array([c.dob[i][5:7] != c.dob[i][8:10] for i in index], dtype=bool)
        if kind is _K.LAST_OCR:
            return np.array([garble.ocr_misread(c.last_name[i], 0.0) is not None
                             for i in index], dtype=bool)  # fmt: skip
        if kind is _K.LAST_PHONETIC:
            return np.array([garble.phonetic_respelling(c.last_name[i], 0.0) is not None
                             for i in index], dtype=bool)  # fmt: skip
        if kind is _K.ZIP_TRANSPOSED:
            return np.array([garble.digits_transposed(c.zip[i], 0.0) is not None
                             for i in index], dtype=bool)  # fmt: skip
        return np.ones(len(index), dtype=bool)


def _conventions(
    rng: np.random.Generator, columns: IdentityColumns, rates: ErrorRates, errors: ErrorArray
) -> None:
    """How the agency records names and SSNs, whatever the care: the `independent` rates."""
    n = len(columns)

    def mark(mask: BoolArray, kind: ErrorKind) -> None:
        errors[mask] |= np.uint64(kind.value)

    hyphenated = np.array(["-" in s for s in columns.last_name], dtype=bool)
    partial = np.flatnonzero(hyphenated & (rng.random(n) < rates.hyphen_partial))
    for i, u in zip(partial.tolist(), rng.random(len(partial)).tolist(), strict=True):
        first, _, second = columns.last_name[i].partition("-")
        columns.last_name[i] = first if u < 0.45 else second if u < 0.8 else f"{first} {second}"
    mark(np.isin(np.arange(n), partial), _K.HYPHEN_PARTIAL)
    has_middle = columns.middle_name != ""
    u = rng.random(n)
    missing = has_middle & (u < rates.middle_missing)
    initial = has_middle & ~missing & (u < rates.middle_missing + rates.middle_initial)
    columns.middle_name[initial] = [s[0] for s in columns.middle_name[initial]]
    columns.middle_name[missing] = ""
    mark(missing, _K.MIDDLE_MISSING)
    mark(initial, _K.MIDDLE_INITIAL)
    dropped = (columns.suffix != "") & (rng.random(n) < rates.suffix_dropped)
    columns.suffix[dropped] = ""
    mark(dropped, _K.SUFFIX_DROPPED)
    no_race = rng.random(n) < rates.race_missing
    columns.race[no_race] = ""
    columns.ethnicity[no_race] = ""
    mark(no_race, _K.RACE_MISSING)
    not_collected = rng.random(n) < rates.ssn_missing
    columns.ssn[not_collected] = ""
    mark(not_collected, _K.SSN_MISSING)


def _vary_street_suffix(
    rng: np.random.Generator, columns: IdentityColumns, errors: ErrorArray, rate: float
) -> None:
    """Some records write the street suffix the other way from the agency (St/Street)."""
    for i in np.flatnonzero(rng.random(len(columns)) < rate).tolist():
        if (other := garble.toggle_suffix(columns.address[i])) is not None:
            columns.address[i] = other
            errors[i] |= np.uint64(_K.ADDRESS_ABBREVIATION.value)


class _Fixes:
    """Rewrites the chosen records' values for one error class at a time."""

    def __init__(
        self,
        rng: np.random.Generator,
        columns: IdentityColumns,
        people: People,
        rows: IntArray,
        errors: ErrorArray,
    ) -> None:
        self.rng, self.c, self.people, self.rows, self.errors = rng, columns, people, rows, errors

    def apply(self, kind: ErrorKind, index: IntArray) -> None:
        if len(index) == 0:
            return
        self.errors[index] |= np.uint64(kind.value)
        name = kind.name
        assert name is not None
        getattr(self, f"_{name.lower()}")(index)

    def _uniforms(self, index: IntArray, k: int) -> list[list[float]]:
        draws: list[list[float]] = self.rng.random((len(index), k)).tolist()
        return draws

    def _typed(self, column: ObjectArray, index: IntArray) -> None:
        for i, (a, b, d) in zip(index.tolist(), self._uniforms(index, 3), strict=True):
            column[i] = typo(column[i], int(a * 4), b, d)

    # first name
    def _first_typo(self, index: IntArray) -> None:
        self._typed(self.c.first_name, index)

    def _nickname(self, index: IntArray) -> None:
        nicknames = reference.nicknames()
        for i, (u,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            options = nicknames[self.c.first_name[i].upper()]
            self.c.first_name[i] = options[min(int(u * len(options)), len(options) - 1)]

    def _first_other(self, index: IntArray) -> None:
        c, people = self.c, self.people
        rows = self.rows[index]
        use_middle = (people.middle_name[rows] != "") & (self.rng.random(len(index)) < 0.5)
        c.first_name[index[use_middle]] = people.middle_name[rows[use_middle]]
        for sex in ("F", "M"):
            redo = index[~use_middle & (people.sex[rows] == sex)]
            pools = reference.first_names(sex)
            while len(redo):
                drawn = pools.draw(self.rng, len(redo), "general")
                same = drawn == people.first_name[self.rows[redo]]
                c.first_name[redo[~same]] = drawn[~same]
                redo = redo[same]

    def _first_missing(self, index: IntArray) -> None:
        self.c.first_name[index] = ""

    def _first_placeholder(self, index: IntArray) -> None:
        sex = self.c.sex[index]
        pick = self.rng.integers(0, len(PLACEHOLDER_FIRST_NAMES), len(index))
        names = np.array(PLACEHOLDER_FIRST_NAMES, dtype=object)[pick]
        baby = names == "Baby"
        names[baby] = np.where(sex[baby] == "F", "Baby Girl", "Baby Boy")
        self.c.first_name[index] = names

    # last name
    def _last_typo(self, index: IntArray) -> None:
        self._typed(self.c.last_name, index)

    def _last_ocr(self, index: IntArray) -> None:
        for i, (u,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            self.c.last_name[i] = garble.ocr_misread(self.c.last_name[i], u)

    def _last_phonetic(self, index: IntArray) -> None:
        for i, (u,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            self.c.last_name[i] = garble.phonetic_respelling(self.c.last_name[i], u)

    def _surname_change(self, index: IntArray) -> None:
        pools = reference.surnames()
        groups = self.people.name_group[self.rows[index]]
        for group in np.unique(groups).tolist():
            redo = index[groups == group]
            while len(redo):
                drawn = pools.draw(self.rng, len(redo), str(group))
                same = drawn == self.c.last_name[redo]
                self.c.last_name[redo[~same]] = drawn[~same]
                redo = redo[same]

    def _name_swap(self, index: IntArray) -> None:
        c = self.c
        c.first_name[index], c.last_name[index] = c.last_name[index], c.first_name[index]

    # DOB (ISO text; errors may leave text that is no real date, kept raw)
    def _dob_typo(self, index: IntArray) -> None:
        for i, (a, b, d) in zip(index.tolist(), self._uniforms(index, 3), strict=True):
            self.c.dob[i] = garble.digits_slip(self.c.dob[i], a, b, d)

    def _dob_day_month(self, index: IntArray) -> None:
        self.c.dob[index] = [f"{s[:4]}-{s[8:10]}-{s[5:7]}" for s in self.c.dob[index]]

    def _dob_year(self, index: IntArray) -> None:
        step = np.where(self.rng.random(len(index)) < 0.8, 1, 10)
        step *= np.where(self.rng.random(len(index)) < 0.5, -1, 1)
        self.c.dob[index] = [
            f"{int(s[:4]) + d:04d}{s[4:]}"
            for s, d in zip(self.c.dob[index], step.tolist(), strict=True)
        ]

    def _dob_missing(self, index: IntArray) -> None:
        self.c.dob[index] = ""

    def _dob_household(self, index: IntArray) -> None:
        people, rows = self.people, self.rows[index]
        member = people.household_member[rows]
        found = (member >= 0) & (people.dob[np.maximum(member, 0)] != people.dob[rows])
        self.c.dob[index[found]] = people.dob_text[member[found]]
        # No such member: a parent's (18-40 years older) or a sibling's (1-8 years) DOB.
        alone = index[~found]
        parent = self.rng.random(len(alone)) < 0.5
        sibling = self.rng.choice([-1, 1], len(alone)) * self.rng.uniform(1, 8, len(alone))
        years = np.where(parent, -self.rng.uniform(18, 40, len(alone)), sibling)
        self.c.dob[alone] = dates.iso(dates.plus_years(people.dob[self.rows[alone]], years))

    def _dob_future(self, index: IntArray) -> None:
        as_of = self.people.as_of.year
        later = self.rng.integers(1, 4, len(index)).tolist()
        out = []
        for s, step in zip(self.c.dob[index], later, strict=True):
            flipped = int(s[:2] + s[3] + s[2])
            out.append(f"{flipped if flipped > as_of else as_of + step:04d}{s[4:]}")
        self.c.dob[index] = out

    def _dob_ocr(self, index: IntArray) -> None:
        for i, (a, b) in zip(index.tolist(), self._uniforms(index, 2), strict=True):
            self.c.dob[i] = garble.date_ocr(self.c.dob[i], a, b)

    # SSN (AAA-GG-SSSS text)
    def _ssn_typo(self, index: IntArray) -> None:
        for i, (a, b, d) in zip(index.tolist(), self._uniforms(index, 3), strict=True):
            self.c.ssn[i] = garble.digits_slip(self.c.ssn[i], a, b, d)

    def _ssn_transposed(self, index: IntArray) -> None:
        for i, (a,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            self.c.ssn[i] = garble.digits_transposed(self.c.ssn[i].replace("-", ""), a)
            text = self.c.ssn[i]
            self.c.ssn[i] = f"{text[:3]}-{text[3:5]}-{text[5:]}"

    def _ssn_household(self, index: IntArray) -> None:
        people, rows = self.people, self.rows[index]
        member = people.household_member[rows]
        found = member >= 0
        self.c.ssn[index[found]] = people.ssn_text[member[found]]
        # No such member: a parent's SSN, which is nobody's in the synthetic population.
        alone = index[~found]
        area = self.rng.integers(1, 666, len(alone))
        group, serial = (
            self.rng.integers(1, 100, len(alone)),
            self.rng.integers(1, 10000, len(alone)),
        )
        self.c.ssn[alone] = [
            f"{a:03d}-{g:02d}-{s:04d}"
            for a, g, s in zip(area.tolist(), group.tolist(), serial.tolist(), strict=True)
        ]

    def _ssn_missing(self, index: IntArray) -> None:
        self.c.ssn[index] = ""

    def _ssn_placeholder(self, index: IntArray) -> None:
        pick = self.rng.choice(len(PLACEHOLDER_SSNS), len(index), p=[0.5, 0.3, 0.2])
        self.c.ssn[index] = np.array(PLACEHOLDER_SSNS, dtype=object)[pick]

    # address
    def _old_address(self, index: IntArray) -> None:
        towns = reference.towns()
        new_town = towns.table().draw_index(self.rng, len(index))
        while (same := towns.name[new_town] == self.c.town[index]).any():  # another town
            new_town[same] = towns.table().draw_index(self.rng, int(same.sum()))
        self.c.town[index], self.c.zip[index] = towns.name[new_town], towns.zip[new_town]
        self.c.address[index] = street_addresses(self.rng, new_town)

    def _address_number_typo(self, index: IntArray) -> None:
        for i, (a, b, d) in zip(index.tolist(), self._uniforms(index, 3), strict=True):
            self.c.address[i] = garble.house_number_typo(self.c.address[i], a, b, d)

    def _address_street_typo(self, index: IntArray) -> None:
        for i, (a, b, d) in zip(index.tolist(), self._uniforms(index, 3), strict=True):
            self.c.address[i] = garble.street_typo(self.c.address[i], int(a * 4), b, d)

    def _address_split_merge(self, index: IntArray) -> None:
        for i, (u,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            self.c.address[i] = garble.split_or_merge(self.c.address[i], u)

    def _address_unit(self, index: IntArray) -> None:
        for i, (u,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            self.c.address[i] = garble.toggle_unit(self.c.address[i], u)

    def _address_missing(self, index: IntArray) -> None:
        self.c.address[index] = ""

    # ZIP and sex
    def _zip_transposed(self, index: IntArray) -> None:
        for i, (u,) in zip(index.tolist(), self._uniforms(index, 1), strict=True):
            self.c.zip[i] = garble.digits_transposed(self.c.zip[i], u)

    def _zip_missing(self, index: IntArray) -> None:
        self.c.zip[index] = ""

    def _zip_placeholder(self, index: IntArray) -> None:
        pick = self.rng.choice(len(PLACEHOLDER_ZIPS), len(index), p=[0.4, 0.3, 0.3])
        self.c.zip[index] = np.array(PLACEHOLDER_ZIPS, dtype=object)[pick]

    def _sex_missing(self, index: IntArray) -> None:
        self.c.sex[index] = ""

    def _sex_wrong(self, index: IntArray) -> None:
        self.c.sex[index] = np.where(self.c.sex[index] == "F", "M", "F")
