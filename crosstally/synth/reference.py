"""Reference tables shipped with the generator: names, Connecticut towns, streets, institutions.

Every table is a small CSV under `crosstally/synth/data/`, read with importlib.resources so the
generator needs no network and no files outside the package. Frequencies are approximations:

- `first_names.csv`: ~320 male and ~300 female first names with relative weights approximating
  SSA popularity for US births 1996-2012 (thousands of births), tagged `general`, `hispanic`,
  `black` or `asian` so names correlate with the person's race/ethnicity.
- `surnames.csv`: ~630 surnames; `general` weights approximate Census 2010 counts (thousands)
  and include the Irish, Italian, Polish, French-Canadian and Portuguese names common in
  Connecticut; the `hispanic` (mostly Puerto Rican and Dominican), `asian` and `black` pools
  have within-pool weights.
- `ct_towns.csv`: all 169 towns with their state town code, a main ZIP, an approximate 2020
  population and an `urban` flag for the larger cities.
- `nicknames.csv`: ~200 (given name, nickname) pairs; `streets.csv`; `institutions.csv`.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from dataclasses import dataclass
from importlib import resources

import numpy as np
import numpy.typing as npt

ObjectArray = npt.NDArray[np.object_]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _rows(filename: str) -> list[dict[str, str]]:
    data = resources.files("crosstally.synth").joinpath("data")
    text = data.joinpath(filename).read_text("utf-8")
    return list(csv.DictReader(io.StringIO(text)))


def _objects(values: list[str]) -> ObjectArray:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


@dataclass(frozen=True)
class WeightedTable:
    """Values with relative weights; `draw` samples indices proportionally to weight."""

    values: ObjectArray
    cumulative: FloatArray

    @classmethod
    def of(cls, values: list[str], weights: list[float]) -> WeightedTable:
        cumulative = np.cumsum(np.asarray(weights, dtype=np.float64))
        return cls(values=_objects(values), cumulative=cumulative)

    def draw_index(self, rng: np.random.Generator, size: int) -> IntArray:
        """Indices into `values`, drawn by weight."""
        u = rng.random(size) * self.cumulative[-1]
        index: IntArray = np.searchsorted(self.cumulative, u, side="right").astype(np.int64)
        return index

    def draw(self, rng: np.random.Generator, size: int) -> ObjectArray:
        """Values drawn by weight."""
        return self.values[self.draw_index(rng, size)]


@dataclass(frozen=True)
class NamePools:
    """One weighted table per name group (`general`, `hispanic`, `black`, `asian`)."""

    pools: dict[str, WeightedTable]

    def draw(self, rng: np.random.Generator, size: int, group: str) -> ObjectArray:
        return self.pools[group].draw(rng, size)


# The shipped lists hold the common names only. Real name distributions have a long tail (the
# ~600 surnames listed cover only about a third of Census 2010 respondents), and a too-short tail
# makes chance name+DOB agreements far more common than in real data. Each pool therefore gets a
# generated tail of rare names holding `*_TAIL_SHARE` of its weight.
SURNAME_TAIL_SHARE = {"general": 0.55, "hispanic": 0.30, "black": 0.0, "asian": 0.25}
FIRST_NAME_TAIL_SHARE = 0.12
_SURNAME_HEADS = {
    "general": "Ack Ald Ash Bar Beck Bell Black Brad Brom Cal Carl Chad Craw Dal Dav Dell Dun "
    "Ed Elm Fair Farn Fen Gar Gil Gold Ham Har Hart Hay Hol Kirk Lang Lind Mar Mer Mor Nor Pem "
    "Pen Rad Ram Red Ros Rut Sal Sand Sher Stan Stock Sut Thorn Wal Wel Wes Whit Win Wood Wyn",
    "hispanic": "Al Bel Car Cas Cor Es Gal Her Lor Mal Mar Mon Pal Quin Ren Sal San Tor Val Ver "
    "Zam Ar Bar Cel Del Fal Gar Lar Mat Nav",
    "asian": "Ch Zh Sh H L W T Y K P B N D G",
}
_SURNAME_ENDS = {
    "general": "ley ton ford field wood man son er ell ard by well more worth stead ham land berg "
    "stein ski ini ello ow ick ing dale brook combe croft hurst mont ridge shaw wick win stone ney "
    "ett ington",
    "hispanic": "ado ares edo ero ez illa ino on ano era oza uela ueva anda ales ina ello ario "
    "ejo ino",
    "asian": "ang eng ong ao iu uan ai ei oon yen ian u",
}


def _rare_surnames(group: str) -> list[str]:
    heads, ends = _SURNAME_HEADS.get(group, ""), _SURNAME_ENDS.get(group, "")
    return [h + e for h in heads.split() for e in ends.split()]


def _spelling_variants(names: list[str]) -> list[str]:
    """Rare spellings of common first names (Jayden/Jaiden, Kaylee/Kayleigh, ...)."""
    rules = (
        (r"(?<=[a-z])y(?=[aeo])", "i"),
        (r"(?<=[^aeiou])i(?=[^aeiouy])", "y"),
        ("ph", "f"),
        (r"c(?=[aou])", "k"),
        (r"k(?=[aou])", "c"),
        ("ee", "ie"),
        (r"(?<=[aeiou])n(?=[aeiouy])", "nn"),
        (r"(?<=[^aeiou])y$", "ie"),
        ("ey$", "y"),
        ("ie$", "y"),
        ("ah$", "a"),
        (r"(?<=[^aeiouh])a$", "ah"),
    )
    variants: list[str] = []
    for name in names:
        lower = name.lower()
        for pattern, replacement in rules:
            changed = re.sub(pattern, replacement, lower[1:], count=1)
            if changed != lower[1:]:
                variants.append(name[0] + changed)
    return variants


def _pools(rows: list[dict[str, str]], tails: dict[str, tuple[list[str], float]]) -> NamePools:
    grouped: dict[str, tuple[list[str], list[float]]] = {}
    for row in rows:
        names, weights = grouped.setdefault(row["group"], ([], []))
        names.append(row["name"])
        weights.append(float(row["weight"]))
    tables = {}
    for group, (names, weights) in grouped.items():
        tail, share = tails.get(group, ([], 0.0))
        known = {n.upper() for n in names}
        tail = sorted({n for n in tail if n.upper() not in known})
        if tail and share > 0:
            # Zipf-like weights in a fixed pseudo-random order, scaled to `share` of the pool.
            order = np.random.default_rng(len(tail)).permutation(len(tail))
            zipf = 1.0 / (order + 20.0)
            zipf *= sum(weights) * share / (1.0 - share) / zipf.sum()
            names, weights = names + tail, weights + zipf.tolist()
        tables[group] = WeightedTable.of(names, weights)
    return NamePools(tables)


@functools.cache
def first_names(sex: str) -> NamePools:
    """First-name pools for sex `F` or `M`."""
    rows = [row for row in _rows("first_names.csv") if row["sex"] == sex]
    groups = {row["group"] for row in rows}
    tails = {
        g: (_spelling_variants([r["name"] for r in rows if r["group"] == g]), FIRST_NAME_TAIL_SHARE)
        for g in groups
    }
    return _pools(rows, tails)


@functools.cache
def surnames() -> NamePools:
    """Surname pools."""
    tails = {g: (_rare_surnames(g), share) for g, share in SURNAME_TAIL_SHARE.items()}
    return _pools(_rows("surnames.csv"), tails)


@dataclass(frozen=True)
class Towns:
    """Connecticut's 169 towns, in state town-code order."""

    code: IntArray
    name: ObjectArray
    zip: ObjectArray
    population: FloatArray
    urban: BoolArray

    def table(self, urban_factor: float = 1.0) -> WeightedTable:
        """Towns weighted by population, urban towns scaled by `urban_factor`."""
        weights = self.population * np.where(self.urban, urban_factor, 1.0)
        return WeightedTable(values=self.name, cumulative=np.cumsum(weights))


@functools.cache
def towns() -> Towns:
    rows = _rows("ct_towns.csv")
    return Towns(
        code=np.array([int(r["code"]) for r in rows], dtype=np.int64),
        name=_objects([r["town"] for r in rows]),
        zip=_objects([r["zip"] for r in rows]),
        population=np.array([float(r["population"]) for r in rows]),
        urban=np.array([r["urban"] == "Y" for r in rows], dtype=np.bool_),
    )


@functools.cache
def nicknames() -> dict[str, tuple[str, ...]]:
    """Given name (upper case) to its common nicknames (title case)."""
    table: dict[str, list[str]] = {}
    for row in _rows("nicknames.csv"):
        table.setdefault(row["given"].upper(), []).append(row["nickname"])
    return {given: tuple(nicks) for given, nicks in table.items()}


@functools.cache
def streets() -> ObjectArray:
    return _objects([row["name"] for row in _rows("streets.csv")])


@functools.cache
def institutions(kind: str) -> WeightedTable:
    """Colleges (`college`) or workforce-training providers (`training`), weighted by size."""
    rows = [row for row in _rows("institutions.csv") if row["kind"] == kind]
    return WeightedTable.of([r["name"] for r in rows], [float(r["weight"]) for r in rows])
