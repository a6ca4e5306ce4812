"""Disclosure control for released count tables: suppression with protection intervals, rounding.

A released table publishes cells, one-way margins and the grand total; a hidden number shows
only as "suppressed". An attacker who knows every published number, the sums that link them,
that counts are whole numbers >= 0, how rounding works and which counts the rules hide, can
work out an interval for each hidden number. `audit` computes those intervals exactly (integer
programs with HiGHS) from the release alone, and `protect` refuses to return a table in which
any interval is too narrow (see `FeasibleRange.protects` and docs/services.md). With
`noise` (`protocol.noise`), every cell is noised first and all of the above works on the
noisy counts, so the release is differentially private as well.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from protocol.errors import InvalidSpec, ProtocolError
from protocol.noise import DiscreteLaplace

Status = Literal["released", "suppressed"]
STATUSES: tuple[Status, ...] = get_args(Status)

# A complement search that runs this long keeps the best pattern found so far (any pattern
# HiGHS returns is feasible, so protection holds; only optimality is given up).
_SEARCH_SECONDS = 20.0

Array = npt.NDArray[np.float64]


class UnsafeRelease(ProtocolError):
    """A table would let someone narrow a hidden count below the protection level."""


@dataclass(frozen=True)
class Cell:
    """A published number: a table cell, a margin (key of one label) or the grand total (key ())."""

    key: tuple[str, ...]
    count: int | None
    status: Status

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise InvalidSpec(f"cell {self.key}: unknown status {self.status!r}; use {STATUSES}")
        if (self.count is None) != (self.status != "released"):
            raise InvalidSpec(f"cell {self.key}: a count is shown exactly when it is released")

    def to_dict(self) -> dict[str, Any]:
        return {"key": list(self.key), "count": self.count, "status": self.status}


@dataclass(frozen=True)
class ReleasedTable:
    """A count table safe to publish, with its one-way margins, grand total and what was hidden.

    `zeros_shown`: counts of 0 are published as 0, so a hidden count is at least 1.
    `noise`: set when every count is noisy (`DiscreteLaplace.statement`: mechanism, scale).
    """

    dimensions: tuple[str, ...]
    cells: tuple[Cell, ...]
    margins: dict[str, tuple[Cell, ...]]
    total: Cell
    min_cell: int
    rounding: int | None
    notes: tuple[str, ...]
    zeros_shown: bool = True
    noise: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable form: keys become lists, suppressed counts become null."""
        noise = {} if self.noise is None else {"noise": dict(self.noise)}
        return {
            "dimensions": list(self.dimensions),
            "cells": [cell.to_dict() for cell in self.cells],
            "margins": {
                dim: [cell.to_dict() for cell in cells] for dim, cells in self.margins.items()
            },
            "total": self.total.to_dict(),
            "min_cell": self.min_cell,
            "rounding": self.rounding,
            "notes": list(self.notes),
            "zeros_shown": self.zeros_shown,
            **noise,
        }


@dataclass(frozen=True)
class FeasibleRange:
    """What the published table lets anyone conclude about one hidden number: low..high."""

    place: str  # "cell (F, hispanic)", "margin dcf.sex = F" or "total"
    is_cell: bool
    low: int
    high: int | None  # None: no upper bound

    def protects(self, min_cell: int) -> bool:
        """At least `min_cell` wide and reaching `min_cell`; a cell can also be below it.

        So a hidden cell might be small or large, and no hidden number is known to within
        fewer than `min_cell` values. A margin or total may be known to be large: that says
        only that it is not a small count.
        """
        wide = self.high is None or (self.high >= min_cell and self.high - self.low >= min_cell)
        return wide and (not self.is_cell or self.low < min_cell)

    def __str__(self) -> str:
        return f"{self.place} in {self.low}..{'' if self.high is None else self.high}"


@dataclass(frozen=True)
class _Layout:
    """Every published number as a variable, and the sums linking them (`matrix @ x == 0`)."""

    places: tuple[str, ...]
    n_cells: int
    margin_vars: tuple[tuple[int, ...], ...]  # per dimension, in level order
    total_var: int
    matrix: Array


def _layout(dimensions: Sequence[str], levels: Sequence[Sequence[str]]) -> _Layout:
    """The cells (in `itertools.product` order), each dimension's margins and the grand total."""
    cell_keys = list(itertools.product(*levels))
    places = [f"cell ({', '.join(key)})" for key in cell_keys]
    lines: list[tuple[int, list[int]]] = []
    margin_vars: list[tuple[int, ...]] = []
    for dim, (name, labels) in enumerate(zip(dimensions, levels, strict=True)):
        if len(levels) == 1:
            # In a one-way table the margin is the table itself: same numbers, same statuses.
            margin_vars.append(tuple(range(len(cell_keys))))
            continue
        indices = []
        for label in labels:
            slab = [j for j, key in enumerate(cell_keys) if key[dim] == label]
            indices.append(len(places))
            lines.append((len(places), slab))
            places.append(f"margin {name} = {label}")
        margin_vars.append(tuple(indices))
    total_var = len(places)
    places.append("total")
    lines.extend((total_var, list(margin)) for margin in margin_vars)
    matrix = np.zeros((len(lines), len(places)))
    for row, (whole, parts) in enumerate(lines):
        matrix[row, whole] = 1.0
        matrix[row, parts] = -1.0
    return _Layout(tuple(places), len(cell_keys), tuple(margin_vars), total_var, matrix)


def _check_rounding(rounding: int | None, min_cell: int) -> None:
    if rounding is not None and rounding - rounding // 2 > min_cell:
        raise InvalidSpec(
            f"rounding {rounding} would round a count of {min_cell} down to 0; "
            f"use a rounding base of at most {2 * min_cell - 1}"
        )


def _preimage(shown: int, *, rounding: int | None, min_cell: int) -> tuple[int, int]:
    """Every true count that publishes as `shown`: a released count is 0 or at least min_cell."""
    if rounding is None or shown == 0:
        # A shown 0 is exactly 0: 1..min_cell-1 are hidden and min_cell rounds to more than 0.
        return shown, shown
    half = rounding // 2
    return max(shown - half, min_cell), shown - half + rounding - 1


@dataclass(frozen=True)
class _Known:
    """The attacker's bounds on every variable, as published."""

    low: Array
    high: Array  # np.inf for a hidden number
    hidden: tuple[int, ...]


def _known(
    layout: _Layout,
    shown: Sequence[int | None],
    *,
    rounding: int | None,
    min_cell: int,
    zeros_shown: bool,
) -> _Known:
    floor = 1 if zeros_shown else 0
    low, high = np.zeros(len(shown)), np.zeros(len(shown))
    for var, value in enumerate(shown):
        if value is None:
            low[var], high[var] = floor, np.inf
        else:
            low[var], high[var] = _preimage(value, rounding=rounding, min_cell=min_cell)
    return _Known(low, high, tuple(var for var, value in enumerate(shown) if value is None))


def _extreme(layout: _Layout, known: _Known, var: int, *, upper: bool) -> tuple[int | None, Array]:
    """The least (or greatest) whole value of `var` over every consistent table, and a witness."""
    n = len(layout.places)
    objective = np.zeros(n)
    objective[var] = -1.0 if upper else 1.0
    bounds = list(zip(known.low, [None if math.isinf(h) else h for h in known.high], strict=True))
    relaxed = linprog(objective, A_eq=layout.matrix, b_eq=np.zeros(len(layout.matrix)),
                      bounds=bounds, method="highs")  # fmt: skip
    if relaxed.status == 3:
        # Unbounded over the reals with rational data and an integer point: unbounded over
        # the integers too (Meyer's theorem), so there is no upper bound at all.
        return None, np.asarray(relaxed.x if relaxed.x is not None else known.low)
    if relaxed.status != 0:
        raise UnsafeRelease("the published numbers contradict each other; nothing was released")
    result = milp(
        objective,
        integrality=np.ones(n),
        bounds=Bounds(known.low, known.high),
        constraints=LinearConstraint(layout.matrix, 0.0, 0.0),
    )
    if result.status != 0 or result.x is None:
        raise UnsafeRelease("the published numbers have no whole-number solution")
    witness = np.round(result.x)
    return int(witness[var]), witness


def _ranges(layout: _Layout, known: _Known) -> list[FeasibleRange]:
    ranges = []
    for var in known.hidden:
        low, _ = _extreme(layout, known, var, upper=False)
        high, _ = _extreme(layout, known, var, upper=True)
        assert low is not None  # bounded below by the floor
        ranges.append(FeasibleRange(layout.places[var], var < layout.n_cells, low, high))
    return ranges


def _levels_of(table: ReleasedTable) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(dict.fromkeys(cell.key[dim] for cell in table.cells))
        for dim in range(len(table.dimensions))
    )


def audit(table: ReleasedTable) -> list[FeasibleRange]:
    """Every hidden number's feasible range, worked out from exactly what `table` publishes."""
    levels = _levels_of(table)
    layout = _layout(table.dimensions, levels)
    if [c.key for c in table.cells] != list(itertools.product(*levels)):
        raise InvalidSpec("released table: cells must be listed in full, in level order")
    published: list[Cell] = list(table.cells)
    if len(table.dimensions) > 1:
        for dim in table.dimensions:
            published.extend(table.margins[dim])
    published.append(table.total)
    if len(published) != len(layout.places):
        raise InvalidSpec("released table: one margin per level of every dimension")
    known = _known(
        layout,
        [c.count for c in published],
        rounding=table.rounding,
        min_cell=table.min_cell,
        zeros_shown=table.zeros_shown,
    )
    return _ranges(layout, known)


def check_release(table: ReleasedTable) -> None:
    """Raise `UnsafeRelease` unless every hidden number's range protects it (`audit`)."""
    narrow = [r for r in audit(table) if not r.protects(table.min_cell)]
    if narrow:
        raise UnsafeRelease(
            f"not released: {'; '.join(map(str, narrow))} can be worked out to within fewer "
            f"than {table.min_cell} values from the published numbers"
        )


class _Search:
    """Complementary suppression, one hidden number at a time (each an exact integer program).

    Hiding a number only widens what is consistent with the release, so a number once shown
    protected stays protected; each round protects one more, so the search ends, at worst
    with everything hidden (which protects every number: see `FeasibleRange.protects`).
    """

    def __init__(
        self, layout: _Layout, values: Sequence[int], *, min_cell: int,
        rounding: int | None, zeros_shown: bool,
    ) -> None:  # fmt: skip
        self.layout, self.values, self.min_cell = layout, list(values), min_cell
        self.rounding, self.zeros_shown = rounding, zeros_shown
        self.total = values[layout.total_var]
        # Every table found consistent with some earlier pattern stays consistent with later,
        # larger ones: their spread certifies a range without solving again.
        self.witnesses: list[Array] = [np.asarray(values, dtype=float)]

    def known(self, suppressed: set[int]) -> _Known:
        shown = [None if var in suppressed else _round(v, self.rounding)
                 for var, v in enumerate(self.values)]  # fmt: skip
        return _known(self.layout, shown, rounding=self.rounding, min_cell=self.min_cell,
                      zeros_shown=self.zeros_shown)  # fmt: skip

    def certified(self, var: int) -> bool:
        seen = [w[var] for w in self.witnesses]
        low, high = int(min(seen)), int(max(seen))
        return FeasibleRange("", var < self.layout.n_cells, low, high).protects(self.min_cell)

    def exposed(self, var: int, suppressed: set[int]) -> bool:
        """Solve for `var`'s range under `suppressed`; keep the extreme tables as witnesses."""
        known = self.known(suppressed)
        low, low_table = _extreme(self.layout, known, var, upper=False)
        high, high_table = _extreme(self.layout, known, var, upper=True)
        if high is None:
            return False
        self.witnesses += [low_table, high_table]
        assert low is not None
        return not FeasibleRange("", var < self.layout.n_cells, low, high).protects(self.min_cell)

    def weight(self, var: int) -> float:
        """The cost of hiding a number: hide cells before margins, margins before the total,
        small numbers before large ones."""
        share = self.values[var] / (self.total + 1)
        if var < self.layout.n_cells:
            return 1.0 + share
        return 8.0 if var == self.layout.total_var else 3.0 + share

    def complements(self, var: int, suppressed: set[int]) -> set[int]:
        """The cheapest set of numbers to hide so that `var`'s range protects it.

        Two witness tables zlo, zhi must both be consistent with the release after hiding
        y: zhi[var] - zlo[var] >= min_cell, zhi[var] >= min_cell and (for a cell)
        zlo[var] < min_cell. A released number c is held to its published bounds unless
        y[c] = 1 frees it to floor..big.
        """
        layout, m = self.layout, self.min_cell
        n = len(layout.places)
        known = self.known(suppressed)
        floor = 1 if self.zeros_shown else 0
        candidates = [c for c in range(n) if c not in suppressed and self.values[c] > 0]
        k = len(candidates)
        big = float(self.total + 2 * m + 1)  # room for the all-hidden witnesses
        low = np.concatenate([known.low, known.low, np.zeros(k)])
        high = np.concatenate([np.minimum(known.high, big)] * 2 + [np.ones(k)])
        for offset, c in itertools.product((0, n), candidates):
            low[offset + c], high[offset + c] = floor, big
        if var < layout.n_cells:
            high[var] = min(high[var], m - 1)
        low[n + var] = max(low[n + var], m)
        rows: list[Array] = []
        lower: list[float] = []
        upper: list[float] = []
        for offset in (0, n):
            for line in layout.matrix:
                row = np.zeros(2 * n + k)
                row[offset : offset + n] = line
                rows.append(row)
                lower.append(0.0)
                upper.append(0.0)
            for j, c in enumerate(candidates):
                # z[c] <= hi[c] + (big - hi[c]) y[c]  and  z[c] >= lo[c] - (lo[c] - floor) y[c]
                row = np.zeros(2 * n + k)
                row[offset + c], row[2 * n + j] = 1.0, -(big - known.high[c])
                rows.append(row)
                lower.append(-np.inf)
                upper.append(float(known.high[c]))
                row = np.zeros(2 * n + k)
                row[offset + c], row[2 * n + j] = 1.0, known.low[c] - floor
                rows.append(row)
                lower.append(float(known.low[c]))
                upper.append(np.inf)
        row = np.zeros(2 * n + k)
        row[n + var], row[var] = 1.0, -1.0
        rows.append(row)
        lower.append(float(m))
        upper.append(np.inf)
        objective = np.concatenate([np.zeros(2 * n), [self.weight(c) for c in candidates]])
        result = milp(
            objective,
            integrality=np.ones(2 * n + k),
            bounds=Bounds(low, high),
            constraints=LinearConstraint(np.array(rows), lower, upper),
            options={"time_limit": _SEARCH_SECONDS},
        )
        if result.x is None:  # no pattern within the time limit: hide every candidate
            return set(candidates)
        solution = np.round(result.x)
        self.witnesses += [solution[:n], solution[n : 2 * n]]
        return {c for j, c in enumerate(candidates) if solution[2 * n + j] > 0.5}

    def run(self, primary: set[int]) -> set[int]:
        suppressed = set(primary)
        done: set[int] = set()
        while todo := sorted(suppressed - done):
            for var in todo:
                if self.certified(var) or not self.exposed(var, suppressed):
                    done.add(var)
                    continue
                suppressed |= self.complements(var, suppressed)
                done.add(var)
                break  # the pattern changed: look again at what is not yet shown safe
        return suppressed


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _notes(
    layout: _Layout,
    dimensions: Sequence[str],
    suppressed: set[int],
    values: Sequence[int],
    *,
    min_cell: int,
    rounding: int | None,
    suppress_zeros: bool,
    noise: DiscreteLaplace | None = None,
) -> tuple[str, ...]:
    notes: list[str] = []
    if noise is not None:
        notes.append(
            f"Every count is noisy: discrete Laplace noise of scale {noise.scale:g} "
            f"(epsilon {noise.epsilon:g}) was added to each cell, negative results were set "
            "to 0, and margins and totals are sums of the noisy cells; suppression and "
            "rounding were applied to the noisy counts."
        )
    if not suppressed:
        floor = "" if suppress_zeros else "0 or "
        notes.append(f"No counts were suppressed: every count is {floor}at least {min_cell}.")
    else:
        cells = sum(var < layout.n_cells for var in suppressed)
        totals = len(suppressed) - cells
        words = [_plural(cells, "cell")] if cells else []
        if totals:
            words.append(_plural(totals, "total"))
        zeros = ", zeros included," if suppress_zeros else ""
        sums = (
            "grand total" if len(dimensions) == 1 else f"{', '.join(dimensions)} and grand totals"
        )
        notes.append(
            f"{' and '.join(words)} {'was' if len(suppressed) == 1 else 'were'} suppressed: "
            f"counts below {min_cell}{zeros} and others chosen so that, from the {sums}, no "
            f"hidden count can be narrowed to fewer than {min_cell} values or told apart from "
            "a small one."
        )
    if not suppress_zeros and 0 in values:
        notes.append("Counts of 0 are shown as 0: an empty category does not identify anyone.")
    if rounding is not None:
        notes.append(
            f"Released counts and totals were rounded to the nearest multiple of {rounding} "
            "after suppression, so they may not add up exactly."
        )
    return tuple(notes)


def _round(value: int, base: int | None) -> int:
    # Half up, so the same count always rounds the same way.
    return value if base is None else (value + base // 2) // base * base


def _levels(
    counts: Mapping[tuple[str, ...], int],
    dimensions: Sequence[str],
    levels: Sequence[Sequence[str]] | None,
) -> tuple[tuple[str, ...], ...]:
    """The categories of every dimension, after checking the keys and counts against them."""
    if not dimensions or len(set(dimensions)) != len(dimensions):
        raise InvalidSpec(
            f"table dimensions {list(dimensions)}: give at least one dimension, each named once"
        )
    for key, count in counts.items():
        if (
            not isinstance(key, tuple)
            or len(key) != len(dimensions)
            or not all(isinstance(label, str) for label in key)
        ):
            raise InvalidSpec(
                f"count key {key!r}: expected a tuple of {len(dimensions)} string labels, one per "
                f"dimension {list(dimensions)}"
            )
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise InvalidSpec(
                f"count for {key}: {count!r} is not a whole number >= 0; fix the input"
            )
    if levels is None:
        seen = tuple(tuple(sorted({key[i] for key in counts})) for i in range(len(dimensions)))
        if not counts:
            raise InvalidSpec(
                "counts are empty: pass levels= listing every category of each dimension"
            )
        return seen
    if len(levels) != len(dimensions):
        raise InvalidSpec(
            f"levels: got {len(levels)} lists for {len(dimensions)} dimensions; "
            "give one list per dimension"
        )
    checked = tuple(tuple(labels) for labels in levels)
    for dim, labels in zip(dimensions, checked, strict=True):
        if not labels or len(set(labels)) != len(labels):
            raise InvalidSpec(
                f"levels of {dim!r}: {list(labels)}; list each category once, at least one"
            )
    for key in counts:
        for dim, label, labels in zip(dimensions, key, checked, strict=True):
            if label not in labels:
                raise InvalidSpec(
                    f"count key {key}: {label!r} is not a level of {dim!r} {list(labels)}; "
                    "add it to levels or fix the key"
                )
    return checked


def protect(
    counts: Mapping[tuple[str, ...], int],
    *,
    dimensions: Sequence[str],
    levels: Sequence[Sequence[str]] | None = None,
    min_cell: int = 11,
    rounding: int | None = None,
    suppress_zeros: bool = False,
    noise: DiscreteLaplace | None = None,
) -> ReleasedTable:
    """Suppress small counts and whatever would narrow them down, then round what is released.

    `levels` lists every category of each dimension (missing cells count 0); by default the
    categories seen in `counts`. Margins and the grand total come from the cells. With
    `noise`, each cell is noised first (negatives set to 0) and nothing after sees the true
    counts. The result passes `check_release`, or this raises `UnsafeRelease`.
    """
    if isinstance(min_cell, bool) or not isinstance(min_cell, int) or min_cell < 1:
        raise InvalidSpec(f"min_cell {min_cell!r}: must be a whole number >= 1 (11 is usual)")
    if rounding is not None and (
        isinstance(rounding, bool) or not isinstance(rounding, int) or rounding < 1
    ):
        raise InvalidSpec(f"rounding {rounding!r}: must be None or a whole number >= 1, such as 5")
    _check_rounding(rounding, min_cell)
    checked = _levels(counts, dimensions, levels)
    layout = _layout(dimensions, checked)
    cell_values = [counts.get(key, 0) for key in itertools.product(*checked)]
    if noise is not None:
        cell_values = [max(0, v) for v in noise.apply(cell_values)]
    values = cell_values + [0] * (len(layout.places) - layout.n_cells)
    for whole, *parts in _sums(layout):
        values[whole] = sum(values[p] for p in parts)
    primary = {
        var
        for var, value in enumerate(values)
        if 0 < value < min_cell or (suppress_zeros and value == 0)
    }
    search = _Search(
        layout, values, min_cell=min_cell, rounding=rounding, zeros_shown=not suppress_zeros
    )
    suppressed = search.run(primary)

    def cell(var: int, key: tuple[str, ...]) -> Cell:
        if var in suppressed:
            return Cell(key, None, "suppressed")
        return Cell(key, _round(values[var], rounding), "released")

    keys = list(itertools.product(*checked))
    margins = {
        dim: tuple(
            cell(var, keys[var] if len(checked) == 1 else (label,))
            for var, label in zip(vars_, labels, strict=True)
        )
        for dim, vars_, labels in zip(dimensions, layout.margin_vars, checked, strict=True)
    }
    table = ReleasedTable(
        dimensions=tuple(dimensions),
        cells=tuple(cell(var, key) for var, key in enumerate(keys)),
        margins=margins,
        total=cell(layout.total_var, ()),
        min_cell=min_cell,
        rounding=rounding,
        notes=_notes(
            layout,
            dimensions,
            suppressed,
            values,
            min_cell=min_cell,
            rounding=rounding,
            suppress_zeros=suppress_zeros,
            noise=noise,
        ),
        zeros_shown=not suppress_zeros,
        noise=None if noise is None else noise.statement(),
    )
    check_release(table)
    return table


def _sums(layout: _Layout) -> list[tuple[int, ...]]:
    """Each sum as (whole, *parts), margins before the total so they can be filled in order."""
    return [
        (int(np.flatnonzero(row > 0)[0]), *map(int, np.flatnonzero(row < 0)))
        for row in layout.matrix
    ]
