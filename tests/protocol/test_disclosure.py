"""Disclosure control: hand-checked tables, every status and note, and an LP attacker as oracle."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from protocol.disclosure import Cell, ReleasedTable, protect
from protocol.errors import InvalidSpec

Counts = dict[tuple[str, ...], int]
T = TypeVar("T")


def grid(rows: Sequence[Sequence[T]]) -> dict[tuple[str, ...], T]:
    """A two-way table from a list of rows, labelled r1.., c1.."""
    return {
        (f"r{i + 1}", f"c{j + 1}"): value
        for i, row in enumerate(rows)
        for j, value in enumerate(row)
    }


def shown(table: ReleasedTable) -> dict[tuple[str, ...], int | str]:
    """Every cell as its released count, or 'P' / 'C' when suppressed."""
    marks = {"primary": "P", "complementary": "C"}
    return {c.key: c.count if c.count is not None else marks[c.status] for c in table.cells}


def margin(table: ReleasedTable, dimension: str) -> list[int | str]:
    marks = {"primary": "P", "complementary": "C"}
    return [c.count if c.count is not None else marks[c.status] for c in table.margins[dimension]]


# --- hand-checked examples ---------------------------------------------------------------------


def test_one_way_table_hides_a_partner_from_the_grand_total() -> None:
    table = protect({("a",): 3, ("b",): 0, ("c",): 20, ("d",): 25}, dimensions=["x"])
    assert shown(table) == {("a",): "P", ("b",): 0, ("c",): "C", ("d",): 25}
    # In a one-way table the margin is the table itself.
    assert table.margins == {"x": table.cells}
    assert table.total == Cell((), 48, "released")
    assert table.notes == (
        "1 cell below 11 was suppressed (primary).",
        "1 more cell was suppressed so the hidden ones cannot be recovered from the grand total "
        "(complementary).",
        "Counts of 0 are shown as 0: an empty category does not identify anyone.",
    )


def test_nothing_to_hide() -> None:
    table = protect({("a",): 12, ("b",): 40}, dimensions=["x"])
    assert all(c.status == "released" for c in (*table.cells, table.total))
    assert table.notes == ("No counts were suppressed: every count is 0 or at least 11.",)


def test_small_grand_total_is_itself_primary() -> None:
    table = protect({("a",): 3, ("b",): 4}, dimensions=["x"])
    assert shown(table) == {("a",): "P", ("b",): "P"}
    assert table.total == Cell((), None, "primary")
    assert table.notes == ("2 cells and 1 total below 11 were suppressed (primary).",)


def test_two_way_table_forms_a_rectangle() -> None:
    table = protect(grid([[20, 3, 15], [12, 18, 25], [30, 14, 2]]), dimensions=["row", "col"])
    # The cheapest partners close a 2x2 rectangle: every row and column has two hidden cells.
    expected: list[list[int | str]] = [[20, "P", "C"], [12, 18, 25], [30, "C", "P"]]
    assert shown(table) == grid(expected)
    assert margin(table, "row") == [38, 55, 46]
    assert margin(table, "col") == [62, 35, 42]
    assert table.total.count == 139
    assert table.notes == (
        "2 cells below 11 were suppressed (primary).",
        "2 more cells were suppressed so the hidden ones cannot be recovered from the row, col or "
        "grand totals (complementary).",
    )


def test_small_margin_is_suppressed_and_protected() -> None:
    table = protect(grid([[3, 0, 2], [20, 15, 30]]), dimensions=["row", "col"])
    assert shown(table) == grid([["P", 0, "P"], ["C", 15, "C"]])
    # Row r1's total (5) is primary; r2's total hides with it, or 70 - 65 would give it away.
    assert margin(table, "row") == ["P", "C"]
    assert margin(table, "col") == [23, 15, 32]
    assert table.total.count == 70
    assert table.notes[:2] == (
        "2 cells and 1 total below 11 were suppressed (primary).",
        "2 more cells and 1 total were suppressed so the hidden ones cannot be recovered from the "
        "row, col or grand totals (complementary).",
    )


def test_single_category_dimension_makes_margin_equal_to_cell() -> None:
    counts: Counts = {("a", "only"): 3, ("b", "only"): 20, ("c", "only"): 30}
    table = protect(counts, dimensions=["x", "y"])
    assert shown(table) == {("a", "only"): "P", ("b", "only"): "C", ("c", "only"): 30}
    # x's margin is each cell again, so it hides exactly when the cell does.
    assert margin(table, "x") == ["P", "C", 30]
    assert margin(table, "y") == [53]


def test_exact_check_breaks_a_bridge_the_line_rule_misses() -> None:
    # Hidden cells form two rectangles joined by (r2, c3): every row and column has two or
    # more hidden cells, yet (r2, c3) equals rows r1+r2 minus columns c1+c2.
    rows = [[2, 2, 20, 20], [2, 2, 2, 40], [20, 20, 2, 2], [20, 20, 2, 2]]
    table = protect(grid(rows), dimensions=["row", "col"])
    statuses = {c.key: c.status for c in table.cells}
    assert statuses[("r2", "c3")] == "primary"
    assert statuses[("r1", "c3")] == "complementary"  # the smallest released on its lines
    assert sum(s == "complementary" for s in statuses.values()) == 1
    assert_protected(table, grid(rows))


def test_three_way_table_hides_a_whole_slab() -> None:
    labels = [("x1", "x2"), ("y1", "y2"), ("z1", "z2")]
    counts = {key: 20 for key in itertools.product(*labels)}
    counts["x1", "y1", "z1"] = 4
    table = protect(counts, dimensions=["a", "b", "c"])
    # Only one-way margins are published, so the protecting lines are slabs, not fibres: the
    # four x1 cells form a 2x2 table whose b and c totals are known, and none is determined.
    assert {k for k, v in shown(table).items() if isinstance(v, str)} == set(
        itertools.product(["x1"], *labels[1:])
    )
    assert shown(table)["x1", "y1", "z1"] == "P"
    assert margin(table, "a") == [64, 80]
    assert table.total.count == 144
    assert_protected(table, counts)


def test_levels_add_zero_cells_and_fix_order() -> None:
    table = protect({("b",): 30}, dimensions=["x"], levels=[["c", "b", "a"]])
    assert [c.key for c in table.cells] == [("c",), ("b",), ("a",)]
    assert shown(table) == {("c",): 0, ("b",): 30, ("a",): 0}


def test_suppress_zeros() -> None:
    table = protect({("a",): 0, ("b",): 20, ("c",): 30}, dimensions=["x"], suppress_zeros=True)
    assert shown(table) == {("a",): "P", ("b",): "C", ("c",): 30}
    assert table.notes == (
        "1 cell below 11 (zeros included) was suppressed (primary).",
        "1 more cell was suppressed so the hidden ones cannot be recovered from the grand total "
        "(complementary).",
    )


def test_rounding_after_suppression() -> None:
    counts = grid([[20, 3, 15], [12, 18, 25], [30, 14, 2]])
    table = protect(counts, dimensions=["row", "col"], rounding=5)
    expected: list[list[int | str]] = [[20, "P", "C"], [10, 20, 25], [30, "C", "P"]]
    assert shown(table) == grid(expected)
    assert margin(table, "row") == [40, 55, 45]
    assert table.total.count == 140
    assert table.notes[-1] == (
        "Released counts and totals were rounded to the nearest multiple of 5 after "
        "suppression, so they may not add up exactly."
    )


def test_to_dict_is_json() -> None:
    table = protect({("a", "x"): 3, ("b", "x"): 20, ("a", "y"): 30}, dimensions=["p", "q"])
    data = json.loads(json.dumps(table.to_dict()))
    assert data["dimensions"] == ["p", "q"]
    assert data["cells"][0] == {"key": ["a", "x"], "count": None, "status": "primary"}
    assert data["total"] == {"key": [], "count": 53, "status": "released"}
    assert set(data["margins"]) == {"p", "q"}
    assert data["min_cell"] == 11 and data["rounding"] is None and data["notes"]


@pytest.mark.parametrize(
    ("counts", "kwargs", "message"),
    [
        ({("a",): -1}, {}, r"count for \('a',\): -1 is not a whole number >= 0"),
        ({("a",): 1.5}, {}, r"1\.5 is not a whole number"),
        ({("a", "b"): 1}, {}, r"expected a tuple of 1 string labels"),
        ({"a": 1}, {}, r"expected a tuple of 1 string labels"),
        ({(1,): 1}, {}, r"expected a tuple of 1 string labels"),
        ({("a",): 1}, {"rounding": True}, r"rounding True: must be None"),
        ({("a",): 1}, {"min_cell": 0}, r"min_cell 0: must be a whole number >= 1"),
        ({("a",): 1}, {"rounding": 0}, r"rounding 0: must be None or a whole number >= 1"),
        ({}, {}, r"counts are empty: pass levels="),
        ({("a",): 1}, {"levels": [["a"], ["b"]]}, r"got 2 lists for 1 dimensions"),
        ({("a",): 1}, {"levels": [["b"]]}, r"'a' is not a level of 'x'"),
        ({("a",): 1}, {"levels": [["a", "a"]]}, r"list each category once"),
        ({("a",): 1}, {"levels": [[]]}, r"list each category once"),
    ],
)
def test_invalid_input(counts: object, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpec, match=message):
        protect(counts, dimensions=["x"], **kwargs)  # type: ignore[arg-type]


def test_dimensions_must_be_distinct() -> None:
    with pytest.raises(InvalidSpec, match="each named once"):
        protect({("a", "b"): 1}, dimensions=["x", "x"])


def test_cell_checks_its_status() -> None:
    with pytest.raises(InvalidSpec, match="unknown status"):
        Cell(("a",), None, "hidden")  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="a count is shown exactly when it is released"):
        Cell(("a",), 4, "primary")


# --- an independent attacker -------------------------------------------------------------------


def assert_protected(table: ReleasedTable, counts: Counts) -> None:
    """Solve for every hidden number by LP from what was published: none may be pinned."""
    keys = [c.key for c in table.cells]
    published = {("cell", c.key): c for c in table.cells}
    if len(table.dimensions) > 1:
        published |= {(d, c.key): c for d in table.dimensions for c in table.margins[d]}
    published["total", ()] = table.total
    hidden = [name for name, c in published.items() if c.count is None]
    col = {name: i for i, name in enumerate(hidden)}

    # Sums as {name: coefficient} == 0: each margin is its slab, the total each margin's sum.
    sums: list[dict[tuple[str, tuple[str, ...]], float]] = []
    for d, dim in enumerate(table.dimensions):
        labels = [c.key[0] for c in table.margins[dim]]
        if len(table.dimensions) > 1:
            for label in labels:
                slab = {("cell", k): -1.0 for k in keys if k[d] == label}
                sums.append({(dim, (label,)): 1.0} | slab)
        parts = ("cell" if len(table.dimensions) == 1 else dim, [(label,) for label in labels])
        sums.append({("total", ()): 1.0} | {(parts[0], k): -1.0 for k in parts[1]})

    a_eq = np.zeros((len(sums), len(hidden)))
    b_eq = np.zeros(len(sums))
    for row, terms in enumerate(sums):
        for name, coefficient in terms.items():
            count = published[name].count
            if count is None:
                a_eq[row, col[name]] = coefficient
            else:
                b_eq[row] -= coefficient * count
    for name in hidden:
        objective = np.zeros(len(hidden))
        objective[col[name]] = 1.0
        low = linprog(objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        high = linprog(-objective, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
        assert low.status == 0, name
        if high.status == 3:  # unbounded above: certainly not recovered
            continue
        assert high.status == 0, name
        assert -high.fun - low.fun > 1e-6, f"{name} is recoverable as {low.fun}"
    for key in keys:
        assert published["cell", key].count in (None, counts.get(key, 0))


@st.composite
def tables(draw: st.DrawFn, ways: int) -> tuple[Counts, list[list[str]], int]:
    levels = [
        [f"{chr(ord('a') + d)}{i}" for i in range(draw(st.integers(1, 5 if ways == 2 else 4)))]
        for d in range(ways)
    ]
    counts = {key: draw(st.integers(0, 40)) for key in itertools.product(*levels)}
    return counts, levels, draw(st.integers(3, 11))


def check_release(counts: Counts, levels: list[list[str]], min_cell: int, zeros: bool) -> None:
    dimensions = [f"d{i}" for i in range(len(levels))]
    table = protect(
        counts, dimensions=dimensions, levels=levels, min_cell=min_cell, suppress_zeros=zeros
    )
    for c in (*table.cells, *itertools.chain(*table.margins.values()), table.total):
        assert c.count is None or not 0 < c.count < min_cell, c
        assert c.count is None or not (zeros and c.count == 0), c
    for c in table.cells:
        true = counts[c.key]
        assert c.count in (None, true)
        assert (c.status == "primary") == (0 < true < min_cell or (zeros and true == 0))
    assert_protected(table, counts)


@settings(max_examples=20, deadline=None)
@given(tables(ways=1), st.booleans())
def test_one_way_releases_are_safe(case: tuple[Counts, list[list[str]], int], zeros: bool) -> None:
    check_release(*case, zeros)


@settings(max_examples=60, deadline=None)
@given(tables(ways=2), st.booleans())
def test_two_way_releases_are_safe(case: tuple[Counts, list[list[str]], int], zeros: bool) -> None:
    check_release(*case, zeros)


@settings(max_examples=25, deadline=None)
@given(tables(ways=3), st.booleans())
def test_three_way_releases_are_safe(
    case: tuple[Counts, list[list[str]], int], zeros: bool
) -> None:
    check_release(*case, zeros)
