"""Disclosure control: protection intervals checked by brute force over every consistent table."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.disclosure import (
    Cell,
    FeasibleRange,
    ReleasedTable,
    UnsafeRelease,
    audit,
    check_release,
    protect,
)
from protocol.errors import InvalidSpec

Counts = dict[tuple[str, ...], int]
T = TypeVar("T")
Ints = npt.NDArray[np.int64]


def grid(rows: Sequence[Sequence[T]]) -> dict[tuple[str, ...], T]:
    """A two-way table from a list of rows, labelled r1.., c1.."""
    return {
        (f"r{i + 1}", f"c{j + 1}"): value
        for i, row in enumerate(rows)
        for j, value in enumerate(row)
    }


def shown(table: ReleasedTable) -> dict[tuple[str, ...], int | str]:
    """Every cell as its released count, or '*' when suppressed."""
    return {c.key: "*" if c.count is None else c.count for c in table.cells}


# --- an independent attacker: every whole-number table that publishes the same ---------------


def _round(value: Ints, base: int | None) -> Ints:
    return value if base is None else (value + base // 2) // base * base


def _published(table: ReleasedTable) -> list[tuple[str, Cell, list[int]]]:
    """(place, published cell, the cells it sums) for every published number."""
    keys = [c.key for c in table.cells]
    out = [(f"cell ({', '.join(c.key)})", c, [i]) for i, c in enumerate(table.cells)]
    if len(table.dimensions) > 1:
        for d, dim in enumerate(table.dimensions):
            for m in table.margins[dim]:
                slab = [i for i, k in enumerate(keys) if k[d] == m.key[0]]
                out.append((f"margin {dim} = {m.key[0]}", m, slab))
    out.append(("total", table.total, list(range(len(keys)))))
    return out


def brute_force(table: ReleasedTable, cap: int) -> dict[str, tuple[int, int]]:
    """Least and greatest value of every hidden number over all consistent tables with cells
    up to `cap`: each released number rounds to what was shown and is 0 or >= min_cell (and
    not 0 when zeros are hidden); each hidden one is >= 1 when zeros are shown."""
    m, base = table.min_cell, table.rounding
    options = []
    for c in table.cells:
        v = np.arange(cap + 1)
        if c.count is None:
            v = v[v >= (1 if table.zeros_shown else 0)]
        else:  # the cell's own test below keeps only these; filtering early keeps the grid small
            v = v[_round(v, base) == c.count]
        options.append(v)
    assert np.prod([len(v) for v in options]) < 3_000_000, "too large to enumerate"
    mesh = np.stack([a.ravel() for a in np.meshgrid(*options, indexing="ij")], axis=1)
    ok = np.ones(len(mesh), dtype=bool)
    sums = {}
    for place, cell, parts in _published(table):
        value = mesh[:, parts].sum(axis=1)
        sums[place] = value
        if cell.count is None:
            ok &= value >= (1 if table.zeros_shown else 0)
        else:
            released = (value >= m) | ((value == 0) & table.zeros_shown)
            ok &= released & (_round(value, base) == cell.count)
    assert ok.any(), "the true table must be consistent with its own release"
    return {
        place: (int(sums[place][ok].min()), int(sums[place][ok].max()))
        for place, cell, _ in _published(table)
        if cell.count is None
    }


def cap_for(counts: Counts, table: ReleasedTable) -> int:
    """Cells never exceed a released total; otherwise room above every finite bound."""
    if table.total.count is not None:
        return table.total.count + (table.rounding or 0)
    return sum(counts.values()) + (table.rounding or 0) + 2 * table.min_cell + 1


def assert_audit_exact(table: ReleasedTable, counts: Counts) -> None:
    """`audit` agrees with brute force: same low, same high or unbounded where brute force
    reaches its cap."""
    cap = cap_for(counts, table)
    truth = brute_force(table, cap)
    ranges = {r.place: r for r in audit(table)}
    assert set(ranges) == set(truth)
    for place, (low, high) in truth.items():
        assert ranges[place].low == low, place
        if ranges[place].high is None:
            assert high >= cap, place
        else:
            assert ranges[place].high == high, place


def assert_protected(table: ReleasedTable, counts: Counts) -> None:
    """By brute force: every hidden number ranges over >= min_cell values reaching min_cell,
    and every hidden cell may also be below min_cell."""
    m = table.min_cell
    for place, (low, high) in brute_force(table, cap_for(counts, table)).items():
        assert high - low >= m and high >= m, f"{place} is pinned to {low}..{high}"
        if place.startswith("cell"):
            assert low < m, f"{place} is known to be at least {low}"


def hand_release(
    counts: Counts,
    levels: list[list[str]],
    hidden: set[int],
    *,
    min_cell: int,
    rounding: int | None = None,
    zeros_shown: bool = True,
) -> ReleasedTable:
    """A table with the given numbers hidden (cells in order, then margins, then the total)."""
    dimensions = tuple(f"d{i}" for i in range(len(levels)))
    keys = list(itertools.product(*levels))
    numbers: list[tuple[tuple[str, ...], int]] = [(k, counts[k]) for k in keys]
    if len(levels) > 1:
        for d, labels in enumerate(levels):
            numbers += [((lab,), sum(counts[k] for k in keys if k[d] == lab)) for lab in labels]
    numbers.append(((), sum(counts.values())))

    def cell(i: int) -> Cell:
        key, value = numbers[i]
        if i in hidden:
            return Cell(key, None, "suppressed")
        return Cell(key, int(_round(np.array(value), rounding)), "released")

    cells = tuple(cell(i) for i in range(len(keys)))
    if len(levels) == 1:
        margins = {dimensions[0]: cells}
    else:
        margins, start = {}, len(keys)
        for dim, labels in zip(dimensions, levels, strict=True):
            margins[dim] = tuple(cell(start + j) for j in range(len(labels)))
            start += len(labels)
    return ReleasedTable(dimensions, cells, margins, cell(len(numbers) - 1), min_cell, rounding,
                         (), zeros_shown)  # fmt: skip


# --- the finding: a small cell next to a large one ---------------------------------------------


def test_one_small_cell_beside_a_large_one_is_not_pinned() -> None:
    # Before: x primary, y complementary, total 12 released, so x = 12 - y and y >= 11 gave x = 1.
    counts: Counts = {("x",): 1, ("y",): 11}
    table = protect(counts, dimensions=["d"])
    assert {c.status for c in (*table.cells, table.total)} <= {"released", "suppressed"}
    assert "primary" not in json.dumps(table.to_dict())
    assert "complementary" not in json.dumps(table.to_dict())
    assert_protected(table, counts)
    x = next(r for r in audit(table) if r.place == "cell (x)")
    assert x.low < 11 and (x.high is None or x.high - x.low >= 11)


def test_the_old_release_of_that_table_is_refused() -> None:
    counts: Counts = {("x",): 1, ("y",): 11}
    table = hand_release(counts, [["x", "y"]], {0, 1}, min_cell=11)
    assert brute_force(table, 12) == {"cell (x)": (1, 11), "cell (y)": (1, 11)}
    with pytest.raises(UnsafeRelease, match=r"cell \(x\) in 1\.\.11.*fewer than 11 values"):
        check_release(table)


def test_a_count_query_of_one_category_hides_its_total_too() -> None:
    table = protect({("all",): 5}, dimensions=["population"])
    assert shown(table) == {("all",): "*"} and table.total.count is None
    assert [str(r) for r in audit(table)] == ["cell (all) in 1..", "total in 1.."]
    assert protect({("all",): 30}, dimensions=["population"]).total.count == 30


def test_two_categories_in_each_dimension() -> None:
    counts = grid([[1, 5], [4, 6]])
    table = protect(counts, dimensions=["row", "col"], min_cell=3)
    assert shown(table)["r1", "c1"] == "*"
    assert_protected(table, counts)
    assert_audit_exact(table, counts)


def test_a_large_table_keeps_what_it_can() -> None:
    counts = grid([[20, 3, 15], [12, 18, 25], [30, 14, 2]])
    table = protect(counts, dimensions=["row", "col"])
    hidden = {k for k, v in shown(table).items() if v == "*"}
    assert {("r1", "c2"), ("r3", "c3")} <= hidden
    assert len(hidden) < 9
    assert all(r.protects(11) for r in audit(table))
    assert table.notes[0].startswith(f"{len(hidden)} cells")


# --- properties: random tables against brute force ----------------------------------------------


@st.composite
def small_tables(draw: st.DrawFn) -> tuple[Counts, list[list[str]], int]:
    shape = draw(st.sampled_from([(1,), (2,), (3,), (4,), (1, 2), (2, 1), (2, 2), (1, 3)]))
    levels = [[f"{chr(ord('a') + d)}{i}" for i in range(n)] for d, n in enumerate(shape)]
    counts = {key: draw(st.integers(0, 6)) for key in itertools.product(*levels)}
    return counts, levels, draw(st.integers(2, 4))


@settings(max_examples=80, deadline=None)
@given(small_tables(), st.booleans(), st.sampled_from([None, 2, 3]), st.data())
def test_audit_matches_brute_force(
    case: tuple[Counts, list[list[str]], int],
    zeros_shown: bool,
    rounding: int | None,
    data: st.DataObject,
) -> None:
    counts, levels, m = case
    table = hand_release(counts, levels, set(), min_cell=m)
    values = [c.count for c in (*table.cells, *_margins(table), table.total)]
    small = {
        i
        for i, v in enumerate(values)
        if v is not None and (0 < v < m or (v == 0 and not zeros_shown))
    }
    # When zeros are shown a 0 is never hidden, and an attacker may rely on that.
    others = {
        i
        for i in data.draw(st.sets(st.integers(0, len(values) - 1)))
        if values[i] or not zeros_shown
    }
    table = hand_release(counts, levels, small | others, min_cell=m, rounding=rounding,
                         zeros_shown=zeros_shown)  # fmt: skip
    assert_audit_exact(table, counts)


def _margins(table: ReleasedTable) -> list[Cell]:
    return (
        []
        if len(table.dimensions) == 1
        else [c for d in table.dimensions for c in table.margins[d]]
    )


@settings(max_examples=60, deadline=None)
@given(small_tables(), st.booleans(), st.sampled_from([None, 2, 3]))
def test_small_releases_protect_every_hidden_number(
    case: tuple[Counts, list[list[str]], int], zeros: bool, rounding: int | None
) -> None:
    counts, levels, m = case
    dims = [f"d{i}" for i in range(len(levels))]
    table = protect(counts, dimensions=dims, levels=levels, min_cell=m, rounding=rounding,
                    suppress_zeros=zeros)  # fmt: skip
    for cell, key in zip(table.cells, itertools.product(*levels), strict=True):
        true = counts[key]
        assert cell.count is None or not (0 < true < m or (zeros and true == 0)), cell
        assert cell.count is None or rounding is not None or cell.count == true
    assert_protected(table, counts)
    assert_audit_exact(table, counts)


@st.composite
def tables(draw: st.DrawFn, ways: int) -> tuple[Counts, list[list[str]], int]:
    sizes = [draw(st.integers(1, 4 if ways == 2 else 3)) for _ in range(ways)]
    levels = [[f"{chr(ord('a') + d)}{i}" for i in range(n)] for d, n in enumerate(sizes)]
    counts = {key: draw(st.integers(0, 30)) for key in itertools.product(*levels)}
    return counts, levels, draw(st.integers(3, 11))


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([2, 3]).flatmap(tables), st.booleans())
def test_larger_releases_pass_their_own_audit(
    case: tuple[Counts, list[list[str]], int], zeros: bool
) -> None:
    counts, levels, m = case
    dims = [f"d{i}" for i in range(len(levels))]
    table = protect(counts, dimensions=dims, levels=levels, min_cell=m, suppress_zeros=zeros)
    ranges = audit(table)
    assert all(r.protects(m) for r in ranges)
    for cell, key in zip(table.cells, itertools.product(*levels), strict=True):
        assert cell.count in (None, counts[key])


def test_feasible_range_rule() -> None:
    assert FeasibleRange("cell (a)", True, 0, 11).protects(11)
    assert not FeasibleRange("cell (a)", True, 1, 11).protects(11)  # 11 values only
    assert not FeasibleRange("cell (a)", True, 11, None).protects(11)  # known to be large
    assert FeasibleRange("total", False, 40, None).protects(11)
    assert not FeasibleRange("total", False, 0, 10).protects(11)  # known to be small


# --- the rest of the contract --------------------------------------------------------------------


def test_nothing_to_hide() -> None:
    table = protect({("a",): 12, ("b",): 40}, dimensions=["x"])
    assert all(c.status == "released" for c in (*table.cells, table.total))
    assert table.notes == ("No counts were suppressed: every count is 0 or at least 11.",)


def test_notes_do_not_say_which_were_small() -> None:
    table = protect({("a",): 3, ("b",): 0, ("c",): 20, ("d",): 25}, dimensions=["x"])
    assert table.notes[0].endswith(
        "suppressed: counts below 11 and others chosen so that, from the grand total, no hidden "
        "count can be narrowed to fewer than 11 values or told apart from a small one."
    )
    assert table.notes[-1] == (
        "Counts of 0 are shown as 0: an empty category does not identify anyone."
    )


def test_levels_add_zero_cells_and_fix_order() -> None:
    table = protect({("b",): 30}, dimensions=["x"], levels=[["c", "b", "a"]])
    assert [c.key for c in table.cells] == [("c",), ("b",), ("a",)]
    assert shown(table) == {("c",): 0, ("b",): 30, ("a",): 0}


def test_suppress_zeros() -> None:
    counts: Counts = {("a",): 0, ("b",): 20, ("c",): 30}
    table = protect(counts, dimensions=["x"], suppress_zeros=True)
    assert shown(table)["a",] == "*" and not table.zeros_shown
    assert all(r.protects(11) for r in audit(table))


def test_rounding_after_suppression() -> None:
    counts = grid([[20, 3, 15], [12, 18, 25], [30, 14, 2]])
    table = protect(counts, dimensions=["row", "col"], rounding=5)
    assert all(c.count is None or c.count % 5 == 0 for c in table.cells)
    assert all(r.protects(11) for r in audit(table))
    assert table.notes[-1] == (
        "Released counts and totals were rounded to the nearest multiple of 5 after "
        "suppression, so they may not add up exactly."
    )


def test_to_dict_is_json() -> None:
    table = protect({("a", "x"): 3, ("b", "x"): 20, ("a", "y"): 30}, dimensions=["p", "q"])
    data = json.loads(json.dumps(table.to_dict()))
    assert data["dimensions"] == ["p", "q"]
    assert data["cells"][0] == {"key": ["a", "x"], "count": None, "status": "suppressed"}
    assert set(data["margins"]) == {"p", "q"}
    assert data["min_cell"] == 11 and data["rounding"] is None and data["notes"]
    assert data["zeros_shown"] is True


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
        ({("a",): 1}, {"rounding": 25}, r"rounding 25 would round a count of 11 down to 0"),
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
        Cell(("a",), None, "primary")  # type: ignore[arg-type]
    with pytest.raises(InvalidSpec, match="a count is shown exactly when it is released"):
        Cell(("a",), 4, "suppressed")
