"""A synthetic Connecticut youth population: true identities, drawn as numpy arrays.

Shares are documented in `POPULATION_MIX` and reflect Connecticut's youth population (2020
Census, ages 8-26): about 52% White non-Hispanic, 26% Hispanic (mostly Puerto Rican), 13%
Black, 5% Asian and 4% other or multiracial. Towns are drawn by population, with Hispanic and
Black youth concentrated in the larger cities. About 1.5% of people are twins (same surname,
DOB and address, different first names, SSNs often consecutive): the hard case for linkage.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass

import numpy as np

from crosstally.synth import dates, reference
from crosstally.synth.reference import BoolArray, FloatArray, IntArray, ObjectArray

# (race, ethnicity, name group, share, urban factor for town choice, low-income probability)
POPULATION_MIX: tuple[tuple[str, str, str, float, float, float], ...] = (
    ("white", "non_hispanic", "general", 0.52, 0.6, 0.14),
    ("white", "hispanic", "hispanic", 0.105, 3.0, 0.50),
    ("other", "hispanic", "hispanic", 0.095, 3.0, 0.52),
    ("multiracial", "hispanic", "hispanic", 0.035, 3.0, 0.45),
    ("black", "hispanic", "hispanic", 0.02, 3.0, 0.50),
    ("native", "hispanic", "hispanic", 0.005, 3.0, 0.50),
    ("black", "non_hispanic", "black", 0.13, 3.0, 0.45),
    ("asian", "non_hispanic", "asian", 0.05, 1.0, 0.15),
    ("multiracial", "non_hispanic", "general", 0.03, 1.5, 0.30),
    ("native", "non_hispanic", "general", 0.006, 1.5, 0.35),
    ("other", "non_hispanic", "general", 0.004, 1.5, 0.30),
)
TWIN_SHARE = 0.015  # share of people who are one of a pair of twins
MIDDLE_NAME_SHARE = 0.72  # share of people with a middle name (lower for Hispanic youth)
HYPHENATED_SHARE = {"hispanic": 0.07, "other": 0.02}  # ~3% overall
SUFFIXES = (("JR", 0.010), ("III", 0.0015), ("II", 0.0005))  # shares of males
# Share of people drawing their name from the group's own pool (the rest use `general`).
SURNAME_OWN_POOL = {"hispanic": 0.88, "black": 0.25, "asian": 0.80}
FIRST_NAME_OWN_POOL = {"hispanic": 0.50, "black": 0.30, "asian": 0.35}
STREET_SUFFIXES = (
    ("St", 0.45),
    ("Ave", 0.2),
    ("Rd", 0.15),
    ("Dr", 0.07),
    ("Ln", 0.05),
    ("Ct", 0.03),
    ("Pl", 0.02),
    ("Ter", 0.02),
    ("Way", 0.01),
)
_RESERVED_SSNS = frozenset({123456789, 78051120, 219099999})  # famous fakes/advertised SSNs


@dataclass(frozen=True)
class People:
    """True identities, one array element per person; the empty string means none."""

    as_of: dt.date
    first_name: ObjectArray
    middle_name: ObjectArray
    last_name: ObjectArray
    suffix: ObjectArray
    sex: ObjectArray
    dob: dates.DateArray
    ssn: IntArray
    town_index: IntArray
    address: ObjectArray
    race: ObjectArray
    ethnicity: ObjectArray
    name_group: ObjectArray
    twin_of: IntArray
    low_income: BoolArray

    def __len__(self) -> int:
        return len(self.ssn)

    @property
    def zip(self) -> ObjectArray:
        return reference.towns().zip[self.town_index]

    @property
    def town(self) -> ObjectArray:
        return reference.towns().name[self.town_index]

    @functools.cached_property
    def age(self) -> IntArray:
        return dates.age_years(self.dob, self.as_of)

    @functools.cached_property
    def dob_text(self) -> ObjectArray:
        return dates.iso(self.dob)

    @functools.cached_property
    def ssn_text(self) -> ObjectArray:
        return ssn_text(self.ssn)

    @functools.cached_property
    def household_member(self) -> IntArray:
        """Per person, another person of their household, or -1 when they live alone.

        The population has no explicit households: people with the same surname in the same
        town stand in for one (twins always do). Each person's member is the next such person
        by index, wrapping around, so a household of two points each at the other.
        """
        keys = np.array([f"{a}|{b}" for a, b in zip(self.last_name, self.town_index.tolist(),
                                                       strict=True)], dtype=object)  # fmt: skip
        _, group = np.unique(keys, return_inverse=True)
        order = np.argsort(group, kind="stable")
        sorted_group = group[order]
        starts = np.flatnonzero(np.r_[True, sorted_group[1:] != sorted_group[:-1]])
        start_of = starts[np.searchsorted(starts, np.arange(len(order)), side="right") - 1]
        ends = np.r_[starts[1:], len(order)]
        end_of = ends[np.searchsorted(starts, np.arange(len(order)), side="right") - 1]
        following = np.arange(1, len(order) + 1)
        following = np.where(following == end_of, start_of, following)
        member = np.full(len(order), -1, dtype=np.int64)
        member[order] = order[following]
        member[member == np.arange(len(member))] = -1
        return member

    def global_id(self, index: int) -> str:
        """The true global person id, e.g. `P0000123`."""
        return f"P{index:0{self.id_width}d}"

    @functools.cached_property
    def id_width(self) -> int:
        return max(7, len(str(max(len(self) - 1, 0))))


def ssn_text(ssn: IntArray) -> ObjectArray:
    """`AAA-GG-SSSS` strings for 9-digit integers."""
    out = np.empty(len(ssn), dtype=object)
    out[:] = [f"{v // 1000000:03d}-{v // 10000 % 100:02d}-{v % 10000:04d}" for v in ssn.tolist()]
    return out


def draw_people(
    rng: np.random.Generator, size: int, *, as_of: dt.date, ages: tuple[int, int] = (8, 26)
) -> People:
    """Draw `size` people aged `ages[0]`..`ages[1]` (inclusive) on `as_of`."""
    mix = POPULATION_MIX
    shares = np.array([row[3] for row in mix])
    kind = np.searchsorted(np.cumsum(shares / shares.sum()), rng.random(size), side="right")
    kind = np.minimum(kind, len(mix) - 1)
    first, second = _twin_pairs(rng, size)
    kind[second] = kind[first]

    race = np.array([row[0] for row in mix], dtype=object)[kind]
    ethnicity = np.array([row[1] for row in mix], dtype=object)[kind]
    group = np.array([row[2] for row in mix], dtype=object)[kind]
    sex = np.where(rng.random(size) < 0.488, "F", "M").astype(object)

    first_name = _first_names(rng, sex, group)
    while np.any(clash := first_name[second] == first_name[first]):
        redo = second[clash]
        first_name[redo] = _first_names(rng, sex[redo], group[redo])
    middle_name = _first_names(rng, sex, group)
    same = middle_name == first_name
    middle_name[same] = _first_names(rng, sex[same], group[same])
    has_middle = rng.random(size) < np.where(group == "hispanic", 0.6, MIDDLE_NAME_SHARE)
    middle_name[~has_middle | (middle_name == first_name)] = ""
    last_name = _surnames(rng, group)
    last_name[second] = last_name[first]

    suffix = np.full(size, "", dtype=object)
    u = rng.random(size)
    low = 0.0
    for text, share in SUFFIXES:
        suffix[(sex == "M") & (u >= low) & (u < low + share)] = text
        low += share
    suffix[second] = ""

    dob = _dobs(rng, size, as_of, ages)
    dob[second] = dob[first]

    urban_factor = np.array([row[4] for row in mix])[kind]
    town_index = _towns(rng, urban_factor)
    town_index[second] = town_index[first]
    address = street_addresses(rng, town_index)
    address[second] = address[first]

    ssn = _ssns(rng, size)
    _consecutive_twin_ssns(ssn, first, second)

    towns = reference.towns()
    p_low = np.array([row[5] for row in mix])[kind] * np.where(towns.urban[town_index], 1.25, 0.85)
    low_income = rng.random(size) < np.minimum(p_low, 0.95)
    low_income[second] = low_income[first]

    twin_of = np.full(size, -1, dtype=np.int64)
    twin_of[first], twin_of[second] = second, first
    return People(
        as_of=as_of,
        first_name=first_name,
        middle_name=middle_name,
        last_name=last_name,
        suffix=suffix,
        sex=sex,
        dob=dob,
        ssn=ssn,
        town_index=town_index,
        address=address,
        race=race,
        ethnicity=ethnicity,
        name_group=group,
        twin_of=twin_of,
        low_income=low_income,
    )


def _twin_pairs(rng: np.random.Generator, size: int) -> tuple[IntArray, IntArray]:
    pairs = round(size * TWIN_SHARE / 2)
    chosen = rng.permutation(size)[: 2 * pairs].astype(np.int64)
    return chosen[:pairs], chosen[pairs:]


def _pool_choice(
    rng: np.random.Generator, group: ObjectArray, own: dict[str, float]
) -> ObjectArray:
    """Which pool each person's name comes from: the group's own or `general`."""
    pool = np.full(len(group), "general", dtype=object)
    u = rng.random(len(group))
    for name, share in own.items():
        pool[(group == name) & (u < share)] = name
    return pool


def _first_names(rng: np.random.Generator, sex: ObjectArray, group: ObjectArray) -> ObjectArray:
    pool = _pool_choice(rng, group, FIRST_NAME_OWN_POOL)
    out = np.empty(len(sex), dtype=object)
    for s in ("F", "M"):
        pools = reference.first_names(s)
        for name in ("general", *FIRST_NAME_OWN_POOL):
            mask = (sex == s) & (pool == name)
            out[mask] = pools.draw(rng, int(mask.sum()), name)
    return out


def _surnames(rng: np.random.Generator, group: ObjectArray) -> ObjectArray:
    pools = reference.surnames()
    pool = _pool_choice(rng, group, SURNAME_OWN_POOL)
    out = np.empty(len(group), dtype=object)
    for name in ("general", *SURNAME_OWN_POOL):
        mask = pool == name
        out[mask] = pools.draw(rng, int(mask.sum()), name)
    share = np.where(group == "hispanic", HYPHENATED_SHARE["hispanic"], HYPHENATED_SHARE["other"])
    hyphen = np.flatnonzero((rng.random(len(group)) < share) & (pool != "asian"))
    second = np.empty(len(hyphen), dtype=object)
    for name in ("general", "hispanic", "black"):
        mask = pool[hyphen] == name
        second[mask] = pools.draw(rng, int(mask.sum()), name)
    keep = (second != out[hyphen]) & np.array(["-" not in s for s in out[hyphen]], dtype=bool)
    hyphen, second = hyphen[keep], second[keep]
    out[hyphen] = [f"{a}-{b}" for a, b in zip(out[hyphen], second, strict=True)]
    return out


def _dobs(
    rng: np.random.Generator, size: int, as_of: dt.date, ages: tuple[int, int]
) -> dates.DateArray:
    youngest, oldest = ages
    latest = _years_before(as_of, youngest)
    earliest = _years_before(as_of, oldest + 1) + dt.timedelta(days=1)
    span = (latest - earliest).days
    return dates.day(earliest) + rng.integers(0, span + 1, size).astype("timedelta64[D]")


def _years_before(on: dt.date, years: int) -> dt.date:
    try:
        return on.replace(year=on.year - years)
    except ValueError:  # 29 February
        return on.replace(year=on.year - years, day=28)


def _towns(rng: np.random.Generator, urban_factor: FloatArray) -> IntArray:
    towns = reference.towns()
    out = np.empty(len(urban_factor), dtype=np.int64)
    for factor in np.unique(urban_factor):
        mask = urban_factor == factor
        out[mask] = towns.table(float(factor)).draw_index(rng, int(mask.sum()))
    return out


def street_addresses(rng: np.random.Generator, town_index: IntArray) -> ObjectArray:
    """House number, street and suffix, with an apartment more often in the cities."""
    size = len(town_index)
    streets = reference.streets()
    street = streets[rng.integers(0, len(streets), size)]
    suffix_table = reference.WeightedTable.of(
        [s for s, _ in STREET_SUFFIXES], [w for _, w in STREET_SUFFIXES]
    )
    suffix = suffix_table.draw(rng, size)
    number = np.minimum(np.exp(rng.normal(4.6, 1.1, size)), 1999).astype(np.int64) + 1
    urban = reference.towns().urban[town_index]
    unit = np.where(rng.random(size) < np.where(urban, 0.35, 0.08), rng.integers(1, 40, size), 0)
    out = np.empty(size, dtype=object)
    out[:] = [
        f"{n} {s} {x} Apt {u}" if u else f"{n} {s} {x}"
        for n, s, x, u in zip(number.tolist(), street, suffix, unit.tolist(), strict=True)
    ]
    return out


def _ssns(rng: np.random.Generator, size: int) -> IntArray:
    """Unique SSNs with valid areas (001-899 except 666), groups 01-99, serials 0001-9999."""
    chosen = np.empty(0, dtype=np.int64)
    while len(chosen) < size:
        need = size - len(chosen)
        area = rng.integers(1, 899, need + need // 50 + 16)
        area[area >= 666] += 1  # skip 666; 898 values map onto 001-899 without it
        draw = area * 1000000 + rng.integers(1, 100, len(area)) * 10000
        draw += rng.integers(1, 10000, len(area))
        draw = draw[~np.isin(draw, np.fromiter(_RESERVED_SSNS, dtype=np.int64))]
        merged = np.concatenate([chosen, draw])
        _, first_seen = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first_seen)][:size]
    return chosen.astype(np.int64)


def _consecutive_twin_ssns(ssn: IntArray, first: IntArray, second: IntArray) -> None:
    """Twins often get consecutive SSNs: give the second twin the first's serial plus one."""
    candidate = ssn[first] + 1
    ok = (candidate % 10000 != 0) & ~np.isin(candidate, ssn)
    ok &= ~np.isin(candidate, np.fromiter(_RESERVED_SSNS, dtype=np.int64))
    ssn[second[ok]] = candidate[ok]
