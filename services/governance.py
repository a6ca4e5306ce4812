"""Checking a query spec against a data-sharing agreement; the hub and every node run this.

Everything is compared as the protocol parses it: `where` clauses as Python expressions
(the nodes' own `protocol.cohort.WhereClause`), group-by terms with `protocol.groups.parse_term`,
the population with `protocol.setexpr.parse_population`, and the key profile by the SHA-256
of its canonical JSON. The agreement binds each cohort label to a node, so a column read
through a label is the column of the node the agreement gives that label. docs/agreements.md
says what each term binds.
"""

from __future__ import annotations

import ast
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from protocol.cohort import WhereClause
from protocol.errors import InvalidSpec
from protocol.groups import Term, build_layout, parse_term
from protocol.linkage.keys import KeyProfile
from protocol.paillier import MIN_N_BITS
from protocol.setexpr import parse_population
from protocol.spec import CohortSpec, QuerySpec, parse_spec
from protocol.tally import MAX_COUNT
from services.wire import (
    MAX_WHERE_LENGTH,
    AgreementTerms,
    CohortTerms,
    Kind,
    LinkageTerms,
)

# A `where` nested deeper than this is refused before Python's parser or the nodes'
# evaluator can run out of stack; real filters are a handful of levels deep.
MAX_WHERE_DEPTH = 32
_ASSIGNMENT = re.compile(r"(?<![=!<>])=(?!=)")
WHERE_EXAMPLES = 'write e.g. "substantiated or placed", "juvenile_cases >= 1" or "placed == \'Y\'"'


def read_spec(document: Mapping[str, Any]) -> QuerySpec:
    """`parse_spec` plus the where and group layout checks, any malformed shape as InvalidSpec.

    Key profiles are checked by `parse_spec` itself (`protocol.linkage.keys` refuses a
    template of one identifier), so the hub and the nodes refuse such a profile alike.
    """
    try:
        spec = parse_spec(document)
        population = parse_population(spec.population, spec.cohorts)
        spec_reads(spec)  # every where clause parses; every group-by term is understood
        build_layout(spec, population, n_bits=MIN_N_BITS, max_count=MAX_COUNT)
        return spec
    except InvalidSpec:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
        raise InvalidSpec(
            f"the spec is malformed ({exc.__class__.__name__}: {exc}); see docs/protocol.md "
            "or a template (crosstally/templates) for its shape"
        ) from exc


def where_tree(text: str, *, owner: str) -> ast.Expression | None:
    """A where clause parsed as the nodes parse it (None when empty); `owner` names it in errors.

    A clause that does not parse is a malformed query, never an agreement question: the
    error says so, and where.
    """
    text = text.strip()
    if not text:
        return None
    if len(text) > MAX_WHERE_LENGTH:
        raise InvalidSpec(
            f"{owner} is {len(text):,} characters long; keep it to {MAX_WHERE_LENGTH:,}"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        hint = " (compare with ==, not =)" if _ASSIGNMENT.search(text) else ""
        raise InvalidSpec(
            f"{owner} {_quote(text)} does not parse: {exc.msg} at column {exc.offset}{hint}; "
            f"{WHERE_EXAMPLES}"
        ) from exc
    except (RecursionError, MemoryError) as exc:
        raise InvalidSpec(f"{owner} nests more than {MAX_WHERE_DEPTH} levels; simplify it") from exc
    if _depth(tree) > MAX_WHERE_DEPTH:
        raise InvalidSpec(f"{owner} nests more than {MAX_WHERE_DEPTH} levels; simplify it")
    return tree


def where_columns(cohort: CohortSpec) -> set[str]:
    """The extract columns a cohort's where clause reads, checked as its node checks it."""
    owner = f"cohort {cohort.label}'s where clause"
    tree = where_tree(cohort.where, owner=owner)
    if tree is None:
        return set()
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    WhereClause(cohort.where, names, as_of=dt.date.today())  # only the allowed constructs
    return names


def _quote(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _depth(tree: ast.AST) -> int:
    """Nesting depth, without recursion (the tree may be deeper than the stack)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_WHERE_DEPTH:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return deepest


def group_terms(spec: QuerySpec) -> list[Term]:
    """The spec's group-by terms as the protocol parses them."""
    return [parse_term(text, spec, frozenset()) for text in spec.group_by]


def spec_reads(spec: QuerySpec) -> dict[str, set[str]]:
    """Per agency: every extract column its cohorts' filters and the group-by terms read."""
    fields: dict[str, set[str]] = {}
    for cohort in spec.cohorts.values():
        fields.setdefault(cohort.node, set()).update(where_columns(cohort))
    for term in group_terms(spec):
        for label, column in zip(term.cohorts, term.fields, strict=True):
            fields.setdefault(spec.cohorts[label].node, set()).add(column)
    return fields


def profile_digest(profile: KeyProfile) -> str:
    """SHA-256 of what a key profile derives tokens with (groups, features) as canonical JSON."""
    content = {k: v for k, v in profile.to_dict().items() if k != "name"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def linkage_terms(spec: QuerySpec) -> LinkageTerms:
    """The linkage settings of `spec` as an agreement states them."""
    linkage = spec.linkage
    return LinkageTerms(
        profile=linkage.keys.name,
        profile_sha256=profile_digest(linkage.keys),
        rule=cast(Any, linkage.rule),  # parse_spec checked it
        threshold=linkage.threshold,
        exact_key=linkage.exact_key,
        curve=cast(Any, linkage.curve),
    )


def _context(terms: AgreementTerms, cohorts: Mapping[str, CohortTerms]) -> QuerySpec:
    """A spec carrying the agreement's cohorts, levels and age groups, to parse its terms with."""
    document: dict[str, Any] = {
        "name": f"agreement {terms.id}",
        "agreement": terms.id,
        "kind": "tally",
        "cohorts": {label: {"node": c.node} for label, c in cohorts.items()},
        "population": " | ".join(cohorts),
        "levels": terms.levels,
    }
    if terms.age_groups is not None:
        document["age_groups"] = terms.age_groups
    return parse_spec(document)


Shape = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _shape(term: Term) -> Shape:
    return term.kind, term.cohorts, term.fields, term.labels


def _agreed_terms(terms: AgreementTerms, cohorts: Mapping[str, CohortTerms]) -> dict[Shape, str]:
    """The agreement's group-by terms, parsed; one that does not parse permits nothing."""
    try:
        context = _context(terms, cohorts)
    except (InvalidSpec, ValueError):
        return {}
    shapes: dict[Shape, str] = {}
    for text in terms.group_by:
        try:
            shapes[_shape(parse_term(text, context, frozenset()))] = text
        except (InvalidSpec, ValueError):
            continue
    return shapes


def _missing(terms: AgreementTerms) -> str:
    return (
        f"agreement {terms.id} does not bind {', '.join(terms.missing_terms())} (it was "
        "recorded before agreements named them), so it permits no query: add them to the "
        "agreement, as `crosstally admin agreement draft SPEC` prints them for a spec, and "
        "record it again under a new id (at a node: in its [[agreements]] entry); "
        "docs/agreements.md explains each term"
    )


def _cohort_problems(
    terms: AgreementTerms, spec: QuerySpec, cohorts: Mapping[str, CohortTerms]
) -> list[str]:
    name = f"agreement {terms.id}"
    problems: list[str] = []
    for label, cohort in spec.cohorts.items():
        bound = cohorts.get(label)
        if bound is None:
            problems.append(f"{name} has no cohort {label} (its cohorts: {_list(cohorts)})")
            continue
        if bound.node != cohort.node:
            problems.append(f"{name} gives cohort {label} to {bound.node}, not {cohort.node}")
        if bound.where is not None and not _same_where(bound.where, cohort.where, terms, label):
            problems.append(
                f"{name} fixes cohort {label}'s where clause as {bound.where!r}, "
                f"not {cohort.where!r}"
            )
    left_out = [label for label in cohorts if label not in spec.cohorts]
    if left_out:
        problems.append(f"{name} has cohort(s) {', '.join(left_out)} that the query leaves out")
    return problems


def _same_where(agreed: str, asked: str, terms: AgreementTerms, label: str) -> bool:
    """Whether two where clauses parse to the same expression (spacing and parentheses aside)."""
    try:
        mine = where_tree(agreed, owner=f"agreement {terms.id}'s where clause for {label}")
    except InvalidSpec:
        return False  # an approved filter that does not parse approves nothing
    theirs = where_tree(asked, owner=f"cohort {label}'s where clause")
    return ast.dump(mine) == ast.dump(theirs) if mine and theirs else mine is theirs


def _population_problem(terms: AgreementTerms, spec: QuerySpec, population: str) -> str | None:
    try:
        agreed = parse_population(population, spec.cohorts).text
    except InvalidSpec:
        agreed = None
    if agreed != parse_population(spec.population, spec.cohorts).text:
        return f"agreement {terms.id} fixes the population {population!r}, not {spec.population!r}"
    return None


def _linkage_problems(terms: AgreementTerms, spec: QuerySpec, agreed: LinkageTerms) -> list[str]:
    asked = linkage_terms(spec)
    problems = []
    for field, value in asked.model_dump().items():
        wanted = getattr(agreed, field)
        if field == "profile" or value == wanted:
            continue
        if field == "profile_sha256":
            problems.append(
                f"agreement {terms.id} fixes the linkage key profile {agreed.profile} "
                f"(sha256 {wanted[:12]}…), not {asked.profile} (sha256 {value[:12]}…)"
            )
        else:
            problems.append(
                f"agreement {terms.id} fixes the linkage {field} {wanted!r}, not {value!r}"
            )
    return problems


def _group_problems(
    terms: AgreementTerms, spec: QuerySpec, cohorts: Mapping[str, CohortTerms]
) -> list[str]:
    name = f"agreement {terms.id}"
    agreed = _agreed_terms(terms, cohorts)
    by_field = {shape[:3]: shape for shape in agreed}
    problems: list[str] = []
    asked: set[tuple[str, tuple[str, ...], tuple[str, ...]]] = set()
    for text, term in zip(spec.group_by, group_terms(spec), strict=True):
        shape = _shape(term)
        asked.add(shape[:3])
        if shape in agreed:
            continue
        near = by_field.get(shape[:3])
        if near is not None:
            problems.append(
                f"{name} fixes the categories of {agreed[near]} as {list(near[3])}, "
                f"not {list(shape[3])} (levels, age_groups)"
            )
        else:
            problems.append(f"{name} does not permit grouping by {text}")
    for shape, text in agreed.items():
        if shape[:3] not in asked:
            problems.append(
                f"{name} fixes grouping by {text} as well; the query leaves it out (a table "
                "of other terms is another release, which the agreement does not permit)"
            )
    return problems


def _list(items: Iterable[str]) -> str:
    return ", ".join(items) or "none"


def agreement_problems(
    terms: AgreementTerms, spec: QuerySpec, *, today: dt.date, agency: str | None = None
) -> list[str]:
    """Every way `spec` falls outside `terms`; empty when it is permitted.

    The one decision the hub and every node take on a spec. With `agency` set, only that
    agency's columns are checked (a node enforcing its own copy); everything else the
    agreement binds is checked by every party. A where clause that does not parse raises
    InvalidSpec: it is a malformed query, not an agreement question.
    """
    reads = spec_reads(spec)
    name = f"agreement {terms.id}"
    problems: list[str] = []
    if spec.agreement != terms.id:
        problems.append(f"the query names agreement {spec.agreement}, not {terms.id}")
    if today < terms.valid_from:
        problems.append(f"{name} is not in force until {terms.valid_from}")
    if today > terms.valid_until:
        problems.append(f"{name} expired on {terms.valid_until}")
    if terms.missing_terms():
        problems.append(_missing(terms))
    if spec.kind not in terms.kinds:
        problems.append(f"{name} permits {', '.join(terms.kinds)} queries, not {spec.kind}")
    outsiders = [n for n in spec.nodes() if n not in terms.participants]
    if outsiders:
        problems.append(f"{', '.join(outsiders)} did not sign {name}")
    cohort_problems = [] if terms.cohorts is None else _cohort_problems(terms, spec, terms.cohorts)
    problems += cohort_problems
    if terms.population is not None and not cohort_problems:
        problems += filter(None, [_population_problem(terms, spec, terms.population)])
    if terms.linkage is not None:
        problems += _linkage_problems(terms, spec, terms.linkage)
    start, end = terms.as_of_from, terms.as_of_until
    if start and end and not start <= spec.as_of <= end:
        problems.append(f"{name} permits as_of {start} to {end}, not {spec.as_of}")
    for node, columns in sorted(reads.items()):
        if agency is not None and node != agency:
            continue
        extra = sorted(columns - set(terms.contributions.get(node, ())))
        if extra:
            problems.append(f"{name} does not let {node} contribute {', '.join(extra)}")
    if terms.cohorts is not None:
        problems += _group_problems(terms, spec, terms.cohorts)
    if spec.min_cell < terms.min_cell:
        problems.append(f"min_cell {spec.min_cell} is below {name}'s minimum of {terms.min_cell}")
    if spec.rounding != terms.rounding:
        agreed = f"rounding to {terms.rounding}" if terms.rounding else "no rounding"
        problems.append(f"{name} fixes {agreed}, not {spec.rounding or 'none'}")
    if spec.kind == "match":
        requester = spec.cohorts[spec.requester or ""].node
        if requester not in terms.match_requesters:
            problems.append(f"{name} does not let {requester} learn membership (match)")
    return problems


def size_problems(
    terms: AgreementTerms,
    *,
    population: int | None = None,
    cohort_sizes: Mapping[str, int] | None = None,
) -> list[str]:
    """Why a table over these sizes must not be released: a cohort or the population below
    the agreement's minimum. The hub checks the population it decrypts; a node can check
    its own cohorts (after selection and deduplication) before it sends a row. The reasons
    never state the size itself: a refusal must not publish the small count it protects."""
    name = f"agreement {terms.id}"
    problems = []
    for label, size in sorted((cohort_sizes or {}).items()):
        if terms.min_cohort is not None and size < terms.min_cohort:
            problems.append(
                f"cohort {label} holds fewer persons than {name}'s min_cohort of "
                f"{terms.min_cohort:,}"
            )
    low = terms.min_population
    if low is not None and population is not None and population < low:
        problems.append(
            f"the population counts fewer persons than {name}'s min_population of {low:,}"
        )
    return problems


def party_problems(
    terms: AgreementTerms | None,
    spec: QuerySpec,
    *,
    ring: Iterable[str],
    joiner: str,
    parties: Iterable[str],
) -> list[str]:
    """Why a node must not run a task with this ring, joiner and partner keys, if it must not.

    Every party a task exchanges data with must have signed the agreement (without the
    agreement, as when a steward approved an unlisted query: must be a node of the spec).
    """
    ring = list(ring)
    problems = []
    if ring != spec.nodes():
        problems.append(
            f"the task's ring {_list(ring)} is not the query's nodes in order "
            f"({_list(spec.nodes())})"
        )
    if spec.kind == "match":
        requester = spec.cohorts[spec.requester or ""].node
        if joiner != requester:
            problems.append(f"the task's joiner {joiner} is not the match requester {requester}")
    named = {*ring, joiner, *parties}
    if terms is not None:
        strangers = sorted(named - set(terms.participants))
        who = f"who did not sign agreement {terms.id} (signatories: {_list(terms.participants)})"
    else:
        strangers = sorted(named - set(spec.nodes()))
        who = f"who holds no cohort of the query (its nodes: {_list(spec.nodes())})"
    if strangers:
        problems.append(f"the task would exchange data with {', '.join(strangers)}, {who}")
    return problems


def terms_problems(terms: AgreementTerms) -> list[str]:
    """Why an agreement cannot be recorded as it stands: a binding term missing or unreadable."""
    if terms.missing_terms():
        return [
            f"agreement {terms.id} must name {', '.join(terms.missing_terms())}; "
            "`crosstally admin agreement draft SPEC` prints every term for a spec and "
            "docs/agreements.md explains each"
        ]
    cohorts = terms.cohorts or {}
    problems = []
    try:
        context = _context(terms, cohorts)
        parse_population(terms.population or "", cohorts)
    except (InvalidSpec, ValueError) as exc:
        return [f"agreement {terms.id}: {exc}"]
    for label, cohort in cohorts.items():
        try:
            where_tree(cohort.where or "", owner=f"the where clause of cohort {label}")
        except InvalidSpec as exc:
            problems.append(f"agreement {terms.id}: {exc}")
    for text in terms.group_by:
        try:
            parse_term(text, context, frozenset())
        except (InvalidSpec, ValueError) as exc:
            problems.append(f"agreement {terms.id}: {exc}")
    return problems


def terms_for_spec(
    spec: QuerySpec,
    *,
    analysts: Iterable[str] = (),
    valid_from: dt.date,
    valid_until: dt.date,
    title: str = "",
) -> AgreementTerms:
    """The narrowest agreement that permits exactly `spec` (demo and tests draft from this).

    A spec that fixes its `as_of` is permitted that day only; one that leaves it to the hub
    (the day it is submitted) is permitted any day the agreement is in force.
    """
    match = spec.kind == "match" and spec.requester
    requester = [spec.cohorts[spec.requester or ""].node] if match else []
    dated = "as_of" in spec.raw
    ages = any(t.kind == "age_group" for t in group_terms(spec))
    return AgreementTerms(
        id=spec.agreement,
        title=title or spec.name,
        participants=spec.nodes(),
        kinds=[cast(Kind, spec.kind)],  # parse_spec checked it
        cohorts={
            label: CohortTerms(node=c.node, where=c.where) for label, c in spec.cohorts.items()
        },
        population=str(parse_population(spec.population, spec.cohorts)),
        contributions={node: sorted(cols) for node, cols in spec_reads(spec).items()},
        group_by=list(spec.group_by),
        levels={k: list(v) for k, v in spec.levels.items()},
        age_groups=list(spec.age_groups) if ages else None,
        linkage=linkage_terms(spec),
        analysts=list(analysts),
        match_requesters=requester,
        min_cell=spec.min_cell,
        rounding=spec.rounding,
        as_of_from=spec.as_of if dated else valid_from,
        as_of_until=spec.as_of if dated else valid_until,
        valid_from=valid_from,
        valid_until=valid_until,
    )
