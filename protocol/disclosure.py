"""Disclosure control for released count tables: primary and complementary suppression, rounding."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
from scipy.linalg import null_space
from scipy.optimize import linprog

from protocol.errors import InvalidSpec

Status = Literal["released", "primary", "complementary"]
STATUSES: tuple[Status, ...] = get_args(Status)

# The constraint matrices hold only 0 and ±1, so anything this small is floating-point noise.
_TOLERANCE = 1e-9


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
    """A count table safe to publish, with its one-way margins, grand total and what was hidden."""

    dimensions: tuple[str, ...]
    cells: tuple[Cell, ...]
    margins: dict[str, tuple[Cell, ...]]
    total: Cell
    min_cell: int
    rounding: int | None
    notes: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serializable form: keys become lists, suppressed counts become null."""
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
        }


@dataclass(frozen=True)
class _Published:
    """Every published number as a variable, and the sums linking them.

    Each line is `(whole, *parts)` with `value[whole] == sum(value[parts])`: a margin and its slab
    of cells, or the grand total and one dimension's margins.
    """

    keys: tuple[tuple[str, ...], ...]
    values: tuple[int, ...]
    n_cells: int
    margin_vars: tuple[tuple[int, ...], ...]  # per dimension, in level order
    total_var: int
    lines: tuple[tuple[int, ...], ...]
    through: tuple[tuple[int, ...], ...]  # per variable, the lines it is on


def _publish(values: Sequence[int], levels: Sequence[Sequence[str]]) -> _Published:
    """The cells (in `itertools.product` order), each dimension's margins and the grand total."""
    cell_keys = list(itertools.product(*levels))
    keys: list[tuple[str, ...]] = list(cell_keys)
    all_values = list(values)
    lines: list[tuple[int, ...]] = []
    margin_vars: list[tuple[int, ...]] = []
    for dim, labels in enumerate(levels):
        if len(levels) == 1:
            # In a one-way table the margin is the table itself: same numbers, same statuses.
            margin_vars.append(tuple(range(len(cell_keys))))
            continue
        indices = []
        for label in labels:
            slab = [j for j, key in enumerate(cell_keys) if key[dim] == label]
            indices.append(len(keys))
            lines.append((len(keys), *slab))
            keys.append((label,))
            all_values.append(sum(values[j] for j in slab))
        margin_vars.append(tuple(indices))
    total_var = len(keys)
    keys.append(())
    all_values.append(sum(values))
    lines.extend((total_var, *margin) for margin in margin_vars)
    through: list[list[int]] = [[] for _ in keys]
    for n, line in enumerate(lines):
        for var in line:
            through[var].append(n)
    return _Published(
        tuple(keys),
        tuple(all_values),
        len(cell_keys),
        tuple(margin_vars),
        total_var,
        tuple(lines),
        tuple(map(tuple, through)),
    )


def _pick(table: _Published, candidates: Iterable[int], suppressed: set[int]) -> int:
    """The number to hide next: nonzero, on as few untouched lines as possible, smallest, first."""

    def rank(var: int) -> tuple[bool, int, int, int]:
        # Each line through it with nothing hidden yet would become a new lone line and cost at
        # least one more suppression, so that outranks size; lines already holding a hidden
        # number are closed or kept safe by it.
        fresh = sum(not suppressed.intersection(table.lines[n]) for n in table.through[var])
        # A hidden zero protects little (nonnegativity can pin it), so zeros come last.
        return (table.values[var] == 0, fresh, table.values[var], var)

    return min(candidates, key=rank)


def _close_lone_lines(table: _Published, suppressed: set[int]) -> None:
    """A line with exactly one hidden number gives it away; hide a second, until none is left."""
    while True:
        lone = next((line for line in table.lines if len(suppressed.intersection(line)) == 1), None)
        if lone is None:
            return
        suppressed.add(_pick(table, set(lone) - suppressed, suppressed))


def _pinned_to_zero(
    matrix: npt.NDArray[np.float64], rhs: npt.NDArray[np.float64], col: int
) -> bool:
    """Whether nonnegativity and the sums force this hidden variable to be 0 (max over LP is 0)."""
    objective = np.zeros(matrix.shape[1])
    objective[col] = -1.0
    result = linprog(objective, A_eq=matrix, b_eq=rhs, bounds=(0, None), method="highs")
    return bool(result.status == 0 and -result.fun < _TOLERANCE)


def _determined(table: _Published, suppressed: set[int]) -> list[int]:
    """Hidden variables whose value follows exactly from the published numbers and sums."""
    unknowns = sorted(suppressed)
    column = {var: col for col, var in enumerate(unknowns)}
    matrix = np.zeros((len(table.lines), len(unknowns)))
    rhs = np.zeros(len(table.lines))
    for n, (whole, *parts) in enumerate(table.lines):
        for var, coefficient in ((whole, 1.0), *((part, -1.0) for part in parts)):
            if var in column:
                matrix[n, column[var]] = coefficient
            else:
                rhs[n] -= coefficient * table.values[var]
    # A hidden zero that the sums and nonnegativity force to stay zero is as good as published,
    # so it joins the equations. Hidden positive counts can move both ways and need no LP.
    pinned = [
        column[var]
        for var in unknowns
        if table.values[var] == 0 and _pinned_to_zero(matrix, rhs, column[var])
    ]
    system = np.vstack([matrix, np.eye(len(unknowns))[pinned]])
    # A value is determined exactly when every solution of the homogeneous system leaves it at 0.
    basis = null_space(system)
    return [var for var in unknowns if not np.any(np.abs(basis[column[var]]) > _TOLERANCE)]


def _suppress(table: _Published, primary: set[int]) -> set[int]:
    """Primary numbers plus enough complementary ones that none of them can be worked out."""
    suppressed = set(primary)
    while True:
        _close_lone_lines(table, suppressed)
        exposed = _determined(table, suppressed) if suppressed else []
        if not exposed:
            return suppressed
        # Hide the best released number on a line through the first exposed one; if its lines
        # are all hidden, anything on a line with a hidden number; failing that, anything.
        nearby = {var for n in table.through[exposed[0]] for var in table.lines[n]}
        touching = {var for line in table.lines if suppressed & set(line) for var in line}
        for pool in (nearby, touching, set(range(len(table.values)))):
            if candidates := pool - suppressed:
                suppressed.add(_pick(table, candidates, suppressed))
                break
        else:  # everything is hidden, and then nothing can be determined
            return suppressed


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _describe(table: _Published, vars_: set[int], more: str = "") -> str:
    """'3 cells and 1 total', or with more='more ' '3 more cells and 1 total'."""
    cells = sum(var < table.n_cells for var in vars_)
    totals = len(vars_) - cells
    words = [_plural(cells, f"{more}cell")] if cells else []
    if totals:
        words.append(_plural(totals, "total" if words else f"{more}total"))
    return " and ".join(words)


def _were(vars_: set[int]) -> str:
    return "was" if len(vars_) == 1 else "were"


def _notes(
    table: _Published,
    dimensions: Sequence[str],
    primary: set[int],
    suppressed: set[int],
    *,
    min_cell: int,
    rounding: int | None,
    suppress_zeros: bool,
) -> tuple[str, ...]:
    notes: list[str] = []
    if not suppressed:
        floor = "" if suppress_zeros else "0 or "
        notes.append(f"No counts were suppressed: every count is {floor}at least {min_cell}.")
    if primary:
        zeros = " (zeros included)" if suppress_zeros else ""
        notes.append(
            f"{_describe(table, primary)} below {min_cell}{zeros} {_were(primary)} suppressed "
            "(primary)."
        )
    if complementary := suppressed - primary:
        # In a one-way table the only sum published besides the cells is the grand total.
        totals = (
            "grand total" if len(dimensions) == 1 else f"{', '.join(dimensions)} or grand totals"
        )
        notes.append(
            f"{_describe(table, complementary, 'more ')} {_were(complementary)} suppressed so "
            f"the hidden ones cannot be recovered from the {totals} (complementary)."
        )
    if not suppress_zeros and 0 in table.values:
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
) -> ReleasedTable:
    """Suppress small counts and whatever would give them away, then round what is released.

    `levels` lists every category of each dimension (missing cells count 0); by default the
    categories seen in `counts`. Margins and the grand total come from the true counts.
    """
    if isinstance(min_cell, bool) or not isinstance(min_cell, int) or min_cell < 1:
        raise InvalidSpec(f"min_cell {min_cell!r}: must be a whole number >= 1 (11 is usual)")
    if rounding is not None and (
        isinstance(rounding, bool) or not isinstance(rounding, int) or rounding < 1
    ):
        raise InvalidSpec(f"rounding {rounding!r}: must be None or a whole number >= 1, such as 5")
    checked = _levels(counts, dimensions, levels)
    table = _publish([counts.get(key, 0) for key in itertools.product(*checked)], checked)
    primary = {
        var
        for var, value in enumerate(table.values)
        if 0 < value < min_cell or (suppress_zeros and value == 0)
    }
    suppressed = _suppress(table, primary)

    def cell(var: int) -> Cell:
        if var in primary:
            return Cell(table.keys[var], None, "primary")
        if var in suppressed:
            return Cell(table.keys[var], None, "complementary")
        return Cell(table.keys[var], _round(table.values[var], rounding), "released")

    return ReleasedTable(
        dimensions=tuple(dimensions),
        cells=tuple(cell(var) for var in range(table.n_cells)),
        margins={
            dim: tuple(cell(var) for var in vars_)
            for dim, vars_ in zip(dimensions, table.margin_vars, strict=True)
        },
        total=cell(table.total_var),
        min_cell=min_cell,
        rounding=rounding,
        notes=_notes(
            table,
            dimensions,
            primary,
            suppressed,
            min_cell=min_cell,
            rounding=rounding,
            suppress_zeros=suppress_zeros,
        ),
    )
