"""Differencing: two released tables whose queries differ by a small set of persons.

A table of cohort A next to one of "A and not x" gives the count of x by subtraction, and
no suppression rule on either table protects that difference. The hub keeps every released
query's `definition` per agreement and refuses a query whose definition differs from an
earlier one only in ways that change a small, chosen set of persons (`near_release`):

* one cohort's `where` has the other's conjuncts (terms joined by `and`) plus more, or its
  disjuncts (`or`) plus more: the extra terms may pick out one person;
* a `where` is the other with only constants changed (`first_contact != '2019-03-04'`
  against another date);
* another `as_of` (the same query, a day later: who arrived or aged in between);
* another `min_cell` or rounding (the same counts under another suppression pattern).

A definition that differs anywhere else (another filter altogether, another kind) is
taken as another question; the rule recognises structure, not meaning, and
docs/agreements.md says what it leaves to a fixed `where` and to noise.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from protocol.setexpr import parse_population
from protocol.spec import QuerySpec
from services.governance import group_terms, linkage_terms, where_tree

Definition = dict[str, Any]


def definition(spec: QuerySpec) -> Definition:
    """What a released table is a function of, as plain JSON (stored with the release)."""
    return {
        "kind": spec.kind,
        "cohorts": {
            label: {"node": c.node, "where": c.where.strip()}
            for label, c in sorted(spec.cohorts.items())
        },
        "population": parse_population(spec.population, spec.cohorts).text,
        "group_by": sorted(
            [t.kind, list(t.cohorts), list(t.fields), list(t.labels)] for t in group_terms(spec)
        ),
        "linkage": linkage_terms(spec).model_dump(),
        "requester": spec.requester,
        "as_of": spec.as_of.isoformat(),
        "min_cell": spec.min_cell,
        "rounding": spec.rounding,
    }


def _tree(text: str) -> ast.expr | None:
    tree = where_tree(text, owner="a released query's where clause")
    return None if tree is None else tree.body


def _terms(tree: ast.expr | None, op: type[ast.boolop]) -> Counter[str]:
    """The operands of a top-level `and` (or `or`), nested ones flattened, as a multiset;
    a lone clause is one, and no filter is the empty conjunction."""
    if tree is None:
        return Counter()
    parts, stack = [], [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.BoolOp) and isinstance(node.op, op):
            stack.extend(node.values)
        else:
            parts.append(ast.dump(node))
    return Counter(parts)


class _Masked(ast.NodeTransformer):
    def visit_Constant(self, node: ast.Constant) -> ast.Constant:
        return ast.Constant(value="?")


def _masked(tree: ast.expr) -> str:
    return ast.dump(_Masked().visit(tree))


def _where_step(earlier: str, asked: str) -> str | None:
    """How two filters differ, when it is by a small chosen set: '' when they are the same,
    a phrase when near, None when they are different questions."""
    a, b = _tree(earlier), _tree(asked)
    if (ast.dump(a) if a else "") == (ast.dump(b) if b else ""):
        return ""
    for op, word in ((ast.And, "conjunct"), (ast.Or, "disjunct")):
        if op is ast.Or and (a is None or b is None):
            continue  # no filter is not an empty disjunction
        mine, theirs = _terms(a, op), _terms(b, op)
        if mine == theirs:
            return ""  # the same terms in another order: the same persons
        if not mine - theirs:
            return f"{_plural(theirs - mine, word)} more"
        if not theirs - mine:
            return f"{_plural(mine - theirs, word)} fewer"
    if a is not None and b is not None and _masked(a) == _masked(b):
        return "only its constants changed"
    return None


def _plural(extra: Counter[str], word: str) -> str:
    n = sum(extra.values())
    return f"one {word}" if n == 1 else f"{n} {word}s"


def _steps(earlier: Mapping[str, Any], asked: Mapping[str, Any]) -> list[str] | None:
    """The small differences between two definitions, or None if any difference is not."""
    steps: list[str] = []
    for key in sorted(set(earlier) | set(asked)):
        before, now = earlier.get(key), asked.get(key)
        if before == now:
            continue
        if key == "cohorts":
            if set(before or {}) != set(now or {}):
                return None
            for label in sorted(now or {}):
                old, new = before[label], now[label]  # type: ignore[index]
                if old["node"] != new["node"]:
                    return None
                step = _where_step(old["where"], new["where"])
                if step is None:
                    return None
                if step:
                    steps.append(f"cohort {label}'s where has {step}")
        elif key == "as_of":
            steps.append(f"as_of is {now}, not {before}")
        elif key in ("min_cell", "rounding"):
            steps.append(f"{key} is {now}, not {before} (the same counts, suppressed otherwise)")
        else:
            return None
    return steps


def near_release(
    asked: QuerySpec, released: Iterable[tuple[str, Definition]]
) -> tuple[str, list[str]] | None:
    """The first earlier release (query id, differences) that `asked` would difference."""
    mine = definition(asked)
    for query_id, earlier in released:
        steps = _steps(earlier, mine)
        if steps:  # [] is the same query again: it releases nothing new
            return query_id, steps
    return None


def differencing_refusal(query_id: str, steps: list[str], *, agreement: str) -> str:
    """The plain reason a near query is not released."""
    return (
        f"not released under agreement {agreement}: the query differs from released query "
        f"{query_id} only in that {'; '.join(steps)}, so subtracting the two tables would "
        "count the few persons in between (differencing). Ask the same question again "
        "unchanged, or ask the stewards for an agreement that fixes the cohort filters or adds "
        "noise (privacy); docs/agreements.md explains the rule"
    )
