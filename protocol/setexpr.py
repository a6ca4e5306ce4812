"""Population set expressions over cohort names: `dcf & jj`, `a | b - c`, parsed and checked."""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator
from collections.abc import Set as AbstractSet
from dataclasses import InitVar, dataclass, field
from typing import Literal

from protocol.errors import InvalidSpec

Operator = Literal["&", "|", "-"]

# Python's set-operator precedence: `-` binds tighter than `&`, which binds tighter than `|`.
_BY_PRECEDENCE: tuple[Operator, ...] = ("|", "&", "-")
_PRECEDENCE = {op: level for level, op in enumerate(_BY_PRECEDENCE)}

# The emptiness and polarity checks build truth tables of 2**n bits; 20 cohorts is ~128 KiB
# per table and far beyond any real query.
MAX_COHORTS = 20

_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[&|()-])|(?P<bad>\S))")


@dataclass(frozen=True, slots=True)
class CohortRef:
    """A leaf of the expression: every entity in the named cohort."""

    name: str


@dataclass(frozen=True, slots=True)
class Combine:
    """Two sub-expressions joined by `&` (intersection), `|` (union) or `-` (difference)."""

    op: Operator
    left: SetExpr
    right: SetExpr


SetExpr = CohortRef | Combine


def _render(expr: SetExpr) -> str:
    """Canonical text: single spaces around operators, only the parentheses that are needed."""
    if isinstance(expr, CohortRef):
        return expr.name
    level = _PRECEDENCE[expr.op]
    left, right = _render(expr.left), _render(expr.right)
    if isinstance(expr.left, Combine) and _PRECEDENCE[expr.left.op] < level:
        left = f"({left})"
    # Operators are left-associative, so an equal-precedence right operand keeps its parentheses.
    if isinstance(expr.right, Combine) and _PRECEDENCE[expr.right.op] <= level:
        right = f"({right})"
    return f"{left} {expr.op} {right}"


def _names(expr: SetExpr) -> Iterator[str]:
    if isinstance(expr, CohortRef):
        yield expr.name
    else:
        yield from _names(expr.left)
        yield from _names(expr.right)


def _evaluate(expr: SetExpr, members: AbstractSet[str]) -> bool:
    if isinstance(expr, CohortRef):
        return expr.name in members
    left = _evaluate(expr.left, members)
    right = _evaluate(expr.right, members)
    if expr.op == "&":
        return left and right
    if expr.op == "|":
        return left or right
    return left and not right


def _truth_table(expr: SetExpr, variables: dict[str, int]) -> int:
    """Bit j is set when an entity in exactly the cohorts whose bits are set in j is selected."""
    if isinstance(expr, CohortRef):
        return variables[expr.name]
    left = _truth_table(expr.left, variables)
    right = _truth_table(expr.right, variables)
    if expr.op == "&":
        return left & right
    if expr.op == "|":
        return left | right
    return left & ~right


def _variable_masks(names: list[str]) -> dict[str, int]:
    """For cohort i, the bitmask of membership assignments j that have bit i set."""
    size = 1 << len(names)
    masks: dict[str, int] = {}
    for i, name in enumerate(names):
        width = 1 << i
        mask, period = ((1 << width) - 1) << width, 2 * width
        while period < size:
            mask |= mask << period
            period *= 2
        masks[name] = mask
    return masks


@dataclass(frozen=True)
class Population:
    """A checked set expression: who is counted, given which cohorts an entity belongs to."""

    expr: SetExpr
    # The text as the user wrote it, so errors quote what they typed rather than the canonical form.
    source: InitVar[str | None] = None
    text: str = field(init=False)
    cohorts: frozenset[str] = field(init=False)
    # Cohorts whose membership can bring an entity into the population; every selected entity
    # belongs to at least one of them, so the joiner only needs rows from these cohorts.
    positive_cohorts: frozenset[str] = field(init=False)

    def __post_init__(self, source: str | None) -> None:
        text = _render(self.expr)
        shown = text if source is None else source
        names = sorted(set(_names(self.expr)))
        if len(names) > MAX_COHORTS:
            raise InvalidSpec(
                f"population {shown!r}: uses {len(names)} cohorts; at most {MAX_COHORTS} are "
                "supported; split the query or combine cohorts at the nodes"
            )
        masks = _variable_masks(names)
        table = _truth_table(self.expr, masks)
        if table == 0:
            raise InvalidSpec(
                f"population {shown!r}: selects nobody, whatever the cohorts contain; check the "
                "operators ('a - b' keeps members of a who are not in b, 'a & b' those in both)"
            )
        positive = frozenset(
            name
            for i, name in enumerate(names)
            # Some assignment is selected with this cohort and rejected without it.
            if ((table & masks[name]) >> (1 << i)) & ~table & ~masks[name]
        )
        object.__setattr__(self, "text", text)
        object.__setattr__(self, "cohorts", frozenset(names))
        object.__setattr__(self, "positive_cohorts", positive)

    def contains(self, members: AbstractSet[str]) -> bool:
        """Whether an entity in exactly the cohorts `members` (others ignored) is selected."""
        return _evaluate(self.expr, members)

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["name", "op", "end"]
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:  # trailing whitespace only
            break
        start = match.start(kind)
        if kind == "bad":
            raise InvalidSpec(
                f"population {text!r}: unexpected character {match.group(kind)!r} at position "
                f"{start}; use cohort names, '&', '|', '-' and parentheses"
            )
        tokens.append(_Token("name" if kind == "name" else "op", match.group(kind), start))
    tokens.append(_Token("end", "", len(text.rstrip())))
    return tokens


class _Parser:
    """Recursive descent: a level is `operand (op operand)*`; atoms are names or (...)."""

    def __init__(self, text: str, cohorts: Collection[str]) -> None:
        self.text = text
        self.cohorts = cohorts
        self.tokens = _tokenize(text)
        self.at = 0

    def fail(self, problem: str) -> InvalidSpec:
        return InvalidSpec(f"population {self.text!r}: {problem}")

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def parse(self) -> SetExpr:
        expr = self.binary()
        token = self.peek()
        if token.text == ")":
            raise self.fail(
                f"unmatched ')' at position {token.pos}; remove it or add a matching '('"
            )
        if token.kind != "end":
            found = f"cohort name {token.text!r}" if token.kind == "name" else repr(token.text)
            raise self.fail(
                f"expected an operator ('&', '|' or '-') at position {token.pos} but found "
                f"{found}; join cohorts with '&', '|' or '-'"
            )
        return expr

    def binary(self, level: int = 0) -> SetExpr:
        """Operators at `level` and tighter; each level is left-associative."""
        if level == len(_BY_PRECEDENCE):
            return self.atom()
        op = _BY_PRECEDENCE[level]
        expr = self.binary(level + 1)
        while self.peek().text == op:
            self.at += 1
            expr = Combine(op, expr, self.binary(level + 1))
        return expr

    def atom(self) -> SetExpr:
        token = self.peek()
        self.at += 1
        if token.kind == "name":
            if token.text not in self.cohorts:
                known = ", ".join(sorted(self.cohorts)) or "(none)"
                raise self.fail(
                    f"unknown cohort {token.text!r} at position {token.pos}; known cohorts: {known}"
                )
            return CohortRef(token.text)
        if token.text == "(":
            expr = self.binary()
            closing = self.peek()
            if closing.text != ")":
                raise self.fail(
                    f"missing ')' to close the '(' at position {token.pos} (expected ')' at "
                    f"position {closing.pos}); add it"
                )
            self.at += 1
            return expr
        found = "the expression ended" if token.kind == "end" else f"found {token.text!r}"
        raise self.fail(
            f"expected a cohort name or '(' at position {token.pos} but {found}; "
            "put a cohort name or a parenthesized expression there"
        )


def parse_population(text: str, cohorts: Collection[str]) -> Population:
    """Parse and check a population expression whose names must all be in `cohorts`."""
    if not text.strip():
        raise InvalidSpec(
            f"population {text!r}: is empty; write a set expression over cohort names, "
            "for example 'dcf & jj'"
        )
    return Population(_Parser(text, cohorts).parse(), text)
