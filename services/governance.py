"""Checking a query spec against a data-sharing agreement; the hub and every node run this.

Everything is compared as the protocol parses it: `where` clauses with the nodes' own parser
(`protocol.cohort.WhereClause`), group-by terms with `protocol.groups.parse_term`, the
population with `protocol.setexpr.parse_population`, and the key profile by the SHA-256 of
its canonical JSON. Cohort labels are bound to nodes by the agreement, so a column named
through a label is the column of the node the agreement gives that label.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, cast

from protocol.cohort import WhereClause
from protocol.errors import InvalidSpec
from protocol.groups import Term, build_layout, parse_term
from protocol.linkage.keys import KeyProfile, template_identifiers
from protocol.paillier import MIN_N_BITS
from protocol.setexpr import parse_population
from protocol.spec import CohortSpec, QuerySpec, parse_spec
from protocol.tally import MAX_COUNT
from services.wire import AgreementTerms, Kind, LinkageTerms

# A `where` nested deeper than this is refused before Python's own parser or the nodes'
# evaluator can run out of stack; real filters are a handful of levels deep.
MAX_WHERE_DEPTH = 32
MAX_WHERE_LENGTH = 2000


def read_spec(document: Mapping[str, Any]) -> QuerySpec:
    """`parse_spec` plus the where, group layout and key profile checks, as InvalidSpec."""
    try:
        spec = parse_spec(document)
        population = parse_population(spec.population, spec.cohorts)
        build_layout(spec, population, n_bits=MIN_N_BITS, max_count=MAX_COUNT)
    except InvalidSpec:
        raise
    except (TypeError, ValueError, AttributeError, KeyError, RecursionError) as exc:
        raise InvalidSpec(
            f"the spec is malformed ({exc.__class__.__name__}: {exc}); see docs/protocol.md "
            "or a template (crosstally/templates) for its shape"
        ) from exc
    spec_reads(spec)  # every where clause parses
    problems = profile_problems(spec.linkage.keys)
    if problems:
        raise InvalidSpec("; ".join(problems))
    return spec


def profile_digest(profile: KeyProfile) -> str:
    """SHA-256 of the key profile's canonical JSON: what an agreement binds."""
    canonical = json.dumps(profile.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def profile_problems(profile: KeyProfile) -> list[str]:
    """Key templates that depend on one identifier alone (a token that is a dictionary for it)."""
    return [
        f"key profile {profile.name!r}: group {group.name!r} has a template of one identifier "
        f"({' + '.join(template)}); every key template must combine at least two identifying "
        "fields"
        for group in profile.groups
        for template in group.templates
        if len(template_identifiers(template)) < 2
    ]


def linkage_terms(spec: QuerySpec) -> LinkageTerms:
    """The linkage settings of `spec` as an agreement states them."""
    linkage = spec.linkage
    return LinkageTerms(
        profile_sha256=profile_digest(linkage.keys),
        profile_name=linkage.keys.name,
        rule=cast(Any, linkage.rule),
        threshold=linkage.threshold,
        exact_key=linkage.exact_key,
        curve=cast(Any, linkage.curve),
    )


def where_columns(cohort: CohortSpec) -> set[str]:
    """The extract columns a cohort's where clause reads, parsed as its node parses it."""
    text = cohort.where.strip()
    if not text:
        return set()
    if len(text) > MAX_WHERE_LENGTH:
        raise InvalidSpec(
            f"cohort {cohort.label}'s where clause is {len(text)} characters long; keep it "
            f"under {MAX_WHERE_LENGTH}"
        )
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise InvalidSpec(
            f"cohort {cohort.label}'s where clause {_quote(text)} does not parse: {exc.msg} at "
            f"column {exc.offset}; write e.g. \"substantiated or placed\", "
            "\"juvenile_cases >= 1\" or \"placed == 'Y'\""
        ) from exc
    except (RecursionError, MemoryError) as exc:
        raise InvalidSpec(_too_deep(cohort)) from exc
    if _depth(tree.body) > MAX_WHERE_DEPTH:
        raise InvalidSpec(_too_deep(cohort))
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    WhereClause(text, names, as_of=dt.date.today())  # the nodes' own check of what it may use
    return names


def _quote(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _too_deep(cohort: CohortSpec) -> str:
    return (
        f"cohort {cohort.label}'s where clause nests more than {MAX_WHERE_DEPTH} levels deep; "
        "simplify it"
    )


def _depth(node: ast.AST) -> int:
    """Nesting depth, without recursion (the tree may be deeper than the stack)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        current, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_WHERE_DEPTH:
            break
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(current))
    return deepest


def group_terms(spec: QuerySpec) -> list[Term]:
    """The spec's group-by terms as the protocol parses them."""
    return [parse_term(text, spec, frozenset()) for text in spec.group_by]


def _term_shape(term: Term) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    return term.kind, term.cohorts, term.fields


def spec_reads(spec: QuerySpec) -> dict[str, set[str]]:
    """Per agency: every extract column its cohorts' filters and the group-by terms read."""
    fields: dict[str, set[str]] = {}
    for cohort in spec.cohorts.values():
        fields.setdefault(cohort.node, set()).update(where_columns(cohort))
    for term in group_terms(spec):
        for label, column in zip(term.cohorts, term.fields, strict=True):
            fields.setdefault(spec.cohorts[label].node, set()).add(column)
    return fields


def _permitted_shapes(
    terms: AgreementTerms, spec: QuerySpec
) -> set[tuple[str, tuple[str, ...], tuple[str, ...]]]:
    """The agreement's group-by terms, parsed as the protocol parses a spec's."""
    cohorts = {label: CohortSpec(label, node) for label, node in terms.cohorts.items()}
    shapes = set()
    for text in terms.group_by:
        context = dataclasses.replace(spec, cohorts=cohorts, levels={text: ("-",)})
        try:
            shapes.add(_term_shape(parse_term(text, context, frozenset())))
        except InvalidSpec:
            continue  # an agreement term that does not parse permits nothing
    return shapes


def _bound_problems(terms: AgreementTerms, spec: QuerySpec) -> list[str]:
    """Differences between the spec and what the agreement fixes besides columns."""
    problems: list[str] = []
    name = f"agreement {terms.id}"
    for label, cohort in spec.cohorts.items():
        bound = terms.cohorts.get(label)
        if bound is None:
            problems.append(f"{name} has no cohort {label} (its cohorts: {_list(terms.cohorts)})")
        elif bound != cohort.node:
            problems.append(f"{name} gives cohort {label} to {bound}, not {cohort.node}")
    missing = sorted(set(terms.cohorts) - set(spec.cohorts))
    if missing:
        problems.append(f"{name} has cohort(s) {', '.join(missing)} that the query leaves out")
    if not problems:
        try:
            agreed = parse_population(terms.population, terms.cohorts)
        except InvalidSpec:
            agreed = None
        if agreed != parse_population(spec.population, spec.cohorts):
            problems.append(
                f"{name} fixes the population {terms.population!r}, not {spec.population!r}"
            )
    asked = linkage_terms(spec)
    for field, value in asked.model_dump().items():
        agreed_value = getattr(terms.linkage, field)
        if field != "profile_name" and value != agreed_value:
            what = "key profile (by content hash)" if field == "profile_sha256" else field
            shown = f"{asked.profile_name}, {value[:12]}…" if field == "profile_sha256" else value
            problems.append(f"{name} fixes the linkage {what} {agreed_value!r}, not {shown!r}")
    if not terms.as_of_from <= spec.as_of <= terms.as_of_until:
        problems.append(
            f"{name} permits as_of {terms.as_of_from} to {terms.as_of_until}, not {spec.as_of}"
        )
    if spec.min_cell != terms.min_cell:
        problems.append(f"{name} fixes min_cell {terms.min_cell}, not {spec.min_cell}")
    if spec.rounding != terms.rounding:
        problems.append(f"{name} fixes rounding {terms.rounding}, not {spec.rounding}")
    levels = {k: list(v) for k, v in spec.levels.items()}
    if levels != terms.levels:
        problems.append(f"{name} fixes the levels {terms.levels}, not {levels}")
    if list(spec.age_groups) != terms.age_groups:
        problems.append(f"{name} fixes the age groups {terms.age_groups}")
    return problems


def _list(items: Iterable[str]) -> str:
    return ", ".join(items) or "none"


def agreement_problems(
    terms: AgreementTerms, spec: QuerySpec, *, today: dt.date, agency: str | None = None
) -> list[str]:
    """Every way `spec` falls outside `terms`; empty when it is permitted.

    With `agency` set, that agency's columns only are checked (a node enforcing its own copy);
    everything else the agreement fixes is checked by every party. A where clause that does
    not parse raises InvalidSpec: it is a malformed query, not an agreement question.
    """
    reads = spec_reads(spec)
    problems: list[str] = []
    if spec.agreement != terms.id:
        problems.append(f"the query names agreement {spec.agreement}, not {terms.id}")
    if today < terms.valid_from:
        problems.append(f"agreement {terms.id} is not in force until {terms.valid_from}")
    if today > terms.valid_until:
        problems.append(f"agreement {terms.id} expired on {terms.valid_until}")
    if spec.kind not in terms.kinds:
        problems.append(
            f"agreement {terms.id} permits {', '.join(terms.kinds)} queries, not {spec.kind}"
        )
    outsiders = [n for n in spec.nodes() if n not in terms.participants]
    if outsiders:
        problems.append(f"{', '.join(outsiders)} did not sign agreement {terms.id}")
    problems += profile_problems(spec.linkage.keys)
    problems += _bound_problems(terms, spec)
    for node, columns in sorted(reads.items()):
        if agency is not None and node != agency:
            continue
        extra = sorted(columns - set(terms.contributions.get(node, ())))
        if extra:
            problems.append(
                f"agreement {terms.id} does not let {node} contribute {', '.join(extra)}"
            )
    permitted = _permitted_shapes(terms, spec)
    for text, term in zip(spec.group_by, group_terms(spec), strict=True):
        if _term_shape(term) not in permitted:
            problems.append(f"agreement {terms.id} does not permit grouping by {text}")
    if spec.kind == "match":
        requester = spec.cohorts[spec.requester or ""].node
        if requester not in terms.match_requesters:
            problems.append(
                f"agreement {terms.id} does not let {requester} learn membership (match)"
            )
    return problems


def party_problems(
    terms: AgreementTerms, *, ring: Iterable[str], joiner: str | None, parties: Iterable[str]
) -> list[str]:
    """Parties of a task that did not sign the agreement: its ring, joiner or keyed partners."""
    named = {*ring, *parties} | ({joiner} if joiner else set())
    strangers = sorted(named - set(terms.participants))
    if not strangers:
        return []
    return [
        f"the task would exchange data with {', '.join(strangers)}, who did not sign "
        f"agreement {terms.id} (signatories: {_list(terms.participants)})"
    ]


def terms_for_spec(
    spec: QuerySpec,
    *,
    analysts: Iterable[str] = (),
    valid_from: dt.date,
    valid_until: dt.date,
    title: str = "",
) -> AgreementTerms:
    """The narrowest agreement that permits exactly `spec` (demo and tests draft from this)."""
    match = spec.kind == "match" and spec.requester
    requester = [spec.cohorts[spec.requester or ""].node] if match else []
    return AgreementTerms(
        id=spec.agreement,
        title=title or spec.name,
        participants=spec.nodes(),
        kinds=[cast(Kind, spec.kind)],  # parse_spec checked it
        cohorts={label: cohort.node for label, cohort in spec.cohorts.items()},
        population=str(parse_population(spec.population, spec.cohorts)),
        contributions={node: sorted(cols) for node, cols in spec_reads(spec).items()},
        group_by=list(spec.group_by),
        linkage=linkage_terms(spec),
        analysts=list(analysts),
        match_requesters=requester,
        min_cell=spec.min_cell,
        rounding=spec.rounding,
        as_of_from=spec.as_of,
        as_of_until=spec.as_of,
        levels={k: list(v) for k, v in spec.levels.items()},
        age_groups=list(spec.age_groups),
        valid_from=valid_from,
        valid_until=valid_until,
    )
