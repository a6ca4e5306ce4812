"""Population set expressions: precedence, canonical text, every error; Python sets as oracle."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.errors import InvalidSpec
from protocol.setexpr import CohortRef, Combine, Population, parse_population

COHORTS = ("a", "b", "c", "d")


def memberships(names: tuple[str, ...]) -> list[frozenset[str]]:
    """Every combination of cohort memberships over `names`, the empty one included."""
    return [
        frozenset(combo)
        for size in range(len(names) + 1)
        for combo in itertools.combinations(names, size)
    ]


def same_selection(left: Population, right: Population) -> bool:
    names = tuple(sorted(left.cohorts | right.cohorts))
    return all(left.contains(m) == right.contains(m) for m in memberships(names))


@pytest.mark.parametrize(
    ("flat", "grouped"),
    [
        ("a | b & c", "a | (b & c)"),
        ("a - b - c", "(a - b) - c"),
        ("a & b - c", "a & (b - c)"),
        ("a | b - c", "a | (b - c)"),
        ("a - b | c", "(a - b) | c"),
        ("a & b | c & d", "(a & b) | (c & d)"),
    ],
)
def test_precedence_and_associativity_follow_python(flat: str, grouped: str) -> None:
    assert same_selection(parse_population(flat, COHORTS), parse_population(grouped, COHORTS))
    assert parse_population(flat, COHORTS) == parse_population(grouped, COHORTS)


def test_grouping_on_the_right_changes_a_difference() -> None:
    chained = parse_population("a - b - c", COHORTS)
    nested = parse_population("a - (b - c)", COHORTS)
    assert not chained.contains({"a", "b", "c"})
    assert nested.contains({"a", "b", "c"})


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("dcf&jj", "dcf & jj"),
        ("  (a)  ", "a"),
        ("((a | b)) & c", "(a | b) & c"),
        ("a | (b & c)", "a | b & c"),
        ("a - (b - c)", "a - (b - c)"),
        ("a & (b & c)", "a & (b & c)"),
        ("csde_enrolled_age14_26 - dol_employed", "csde_enrolled_age14_26 - dol_employed"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    names = [*COHORTS, "dcf", "jj", "csde_enrolled_age14_26", "dol_employed"]
    population = parse_population(text, names)
    assert population.text == canonical
    assert str(population) == canonical
    assert parse_population(canonical, names) == population


def test_contains_ignores_cohorts_outside_the_expression() -> None:
    population = parse_population("dcf & jj", ["dcf", "jj", "dol"])
    assert population.contains({"dcf", "jj", "dol"})
    assert not population.contains({"dcf", "dol"})
    assert population.cohorts == frozenset({"dcf", "jj"})


@pytest.mark.parametrize(
    ("text", "positive"),
    [
        ("a & b", {"a", "b"}),
        ("a - b - c", {"a"}),
        ("a - (b - c)", {"a", "c"}),
        ("a - (b | c)", {"a"}),
        ("(a | b) - c", {"a", "b"}),
        # b can never bring anyone in that a alone would not.
        ("a | a & b", {"a"}),
    ],
)
def test_positive_cohorts(text: str, positive: set[str]) -> None:
    assert parse_population(text, COHORTS).positive_cohorts == positive


def test_constructing_a_population_directly_is_checked() -> None:
    with pytest.raises(InvalidSpec, match="selects nobody"):
        Population(Combine("-", CohortRef("a"), CohortRef("a")))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "dcf & jx",
            "population 'dcf & jx': unknown cohort 'jx' at position 6; known cohorts: dcf, jj",
        ),
        (
            "dcf &",
            "population 'dcf &': expected a cohort name or '(' at position 5 but the expression "
            "ended; put a cohort name or a parenthesized expression there",
        ),
        (
            "dcf & & jj",
            "population 'dcf & & jj': expected a cohort name or '(' at position 6 but found '&'; "
            "put a cohort name or a parenthesized expression there",
        ),
        (
            "()",
            "population '()': expected a cohort name or '(' at position 1 but found ')'; "
            "put a cohort name or a parenthesized expression there",
        ),
        (
            "",
            "population '': is empty; write a set expression over cohort names, "
            "for example 'dcf & jj'",
        ),
        (
            "   ",
            "population '   ': is empty; write a set expression over cohort names, "
            "for example 'dcf & jj'",
        ),
        (
            "(dcf & jj",
            "population '(dcf & jj': missing ')' to close the '(' at position 0 "
            "(expected ')' at position 9); add it",
        ),
        (
            "dcf & jj)",
            "population 'dcf & jj)': unmatched ')' at position 8; remove it or add a matching '('",
        ),
        (
            "dcf jj",
            "population 'dcf jj': expected an operator ('&', '|' or '-') at position 4 but found "
            "cohort name 'jj'; join cohorts with '&', '|' or '-'",
        ),
        (
            "dcf ^ jj",
            "population 'dcf ^ jj': unexpected character '^' at position 4; "
            "use cohort names, '&', '|', '-' and parentheses",
        ),
        (
            "dcf - dcf",
            "population 'dcf - dcf': selects nobody, whatever the cohorts contain; check the "
            "operators ('a - b' keeps members of a who are not in b, 'a & b' those in both)",
        ),
        (
            "dcf & (jj - dcf)",
            "population 'dcf & (jj - dcf)': selects nobody, whatever the cohorts contain; check "
            "the operators ('a - b' keeps members of a who are not in b, 'a & b' those in both)",
        ),
    ],
)
def test_error_messages(text: str, message: str) -> None:
    with pytest.raises(InvalidSpec) as raised:
        parse_population(text, ["dcf", "jj"])
    assert str(raised.value) == message


def test_unknown_cohort_with_no_cohorts_known() -> None:
    with pytest.raises(
        InvalidSpec, match=r"unknown cohort 'a' at position 0; known cohorts: \(none\)"
    ):
        parse_population("a", [])


def test_too_many_cohorts() -> None:
    names = [f"c{i}" for i in range(21)]
    with pytest.raises(InvalidSpec, match="uses 21 cohorts; at most 20"):
        parse_population(" | ".join(names), names)


# A generated expression: a cohort name, or (operator, left, right).
Tree = str | tuple[str, "Tree", "Tree"]

SET_OPS: dict[str, Callable[[frozenset[int], frozenset[int]], frozenset[int]]] = {
    "&": frozenset.__and__,
    "|": frozenset.__or__,
    "-": frozenset.__sub__,
}


def trees(names: tuple[str, ...]) -> st.SearchStrategy[Tree]:
    return st.recursive(
        st.sampled_from(names),
        lambda inner: st.tuples(st.sampled_from(sorted(SET_OPS)), inner, inner),
        max_leaves=8,
    )


def render(tree: Tree) -> str:
    if isinstance(tree, str):
        return tree
    op, left, right = tree
    return f"({render(left)} {op} {render(right)})"


def with_sets(tree: Tree, sets: dict[str, frozenset[int]]) -> frozenset[int]:
    if isinstance(tree, str):
        return sets[tree]
    op, left, right = tree
    return SET_OPS[op](with_sets(left, sets), with_sets(right, sets))


@st.composite
def cases(draw: st.DrawFn) -> tuple[tuple[str, ...], Tree, dict[str, frozenset[int]]]:
    names = COHORTS[: draw(st.integers(2, 4))]
    tree = draw(trees(names))
    sets = {name: draw(st.frozensets(st.integers(0, 15))) for name in names}
    return names, tree, sets


def select(population: Population, sets: dict[str, frozenset[int]]) -> frozenset[int]:
    everyone = frozenset().union(*sets.values())
    return frozenset(
        x for x in everyone if population.contains({name for name, s in sets.items() if x in s})
    )


@settings(max_examples=200, deadline=None)
@given(cases())
def test_contains_agrees_with_python_sets(
    case: tuple[tuple[str, ...], Tree, dict[str, frozenset[int]]],
) -> None:
    names, tree, sets = case
    try:
        population = parse_population(render(tree), names)
    except InvalidSpec as error:
        assert "selects nobody" in str(error)
        # Empty for every possible choice of sets, not just this one.
        for combo in memberships(names):
            assert not with_sets(tree, {n: frozenset({0} if n in combo else ()) for n in names})
        return
    assert select(population, sets) == with_sets(tree, sets)
    assert parse_population(population.text, names) == population
    # Anyone selected belongs to a positive cohort; each positive cohort can tip someone in.
    for members in memberships(names):
        if population.contains(members):
            assert members & population.positive_cohorts
    for name in population.positive_cohorts:
        assert any(
            population.contains(m | {name}) and not population.contains(m - {name})
            for m in memberships(names)
        )


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(COHORTS), min_size=1, max_size=6),
    st.lists(st.sampled_from(sorted(SET_OPS)), min_size=5, max_size=5),
    st.dictionaries(st.sampled_from(COHORTS), st.frozensets(st.integers(0, 15)), min_size=4),
)
def test_unparenthesized_text_reads_like_python(
    operands: list[str], operators: list[str], sets: dict[str, frozenset[int]]
) -> None:
    text = operands[0] + "".join(
        f" {op} {name}" for op, name in zip(operators, operands[1:], strict=False)
    )
    expected = eval(text, {}, dict(sets))  # Python's own precedence is the oracle.
    try:
        population = parse_population(text, COHORTS)
    except InvalidSpec as error:
        assert "selects nobody" in str(error)
        assert not expected
        return
    assert select(population, sets) == expected
