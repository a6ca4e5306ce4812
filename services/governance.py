"""Checking a query spec against a data-sharing agreement; the hub and every node run this."""

from __future__ import annotations

import ast
import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any, cast

from protocol.errors import InvalidSpec
from protocol.groups import build_layout
from protocol.paillier import MIN_N_BITS
from protocol.setexpr import parse_population
from protocol.spec import QuerySpec, parse_spec
from protocol.tally import MAX_COUNT
from services.wire import AgreementTerms, Kind

_REFERENCE = re.compile(r"\b([A-Za-z_]\w*)\.([A-Za-z_]\w*)\b")


def _normalize_term(term: str) -> str:
    return re.sub(r"\s+", "", term)


def read_spec(document: Mapping[str, Any]) -> QuerySpec:
    """`parse_spec` plus the group layout check, any malformed shape raised as InvalidSpec."""
    try:
        spec = parse_spec(document)
        population = parse_population(spec.population, spec.cohorts)
        build_layout(spec, population, n_bits=MIN_N_BITS, max_count=MAX_COUNT)
        return spec
    except InvalidSpec:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise InvalidSpec(
            f"the spec is malformed ({exc.__class__.__name__}: {exc}); see docs/protocol.md "
            "or a template (crosstally/templates) for its shape"
        ) from exc


def where_columns(where: str) -> set[str]:
    """Column names a cohort's where clause reads (the protocol validates the syntax itself)."""
    if not where.strip():
        return set()
    try:
        tree = ast.parse(where, mode="eval")
    except SyntaxError:
        return {where}  # unparseable: no agreement lists it, so the check refuses it
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}


def spec_fields(spec: QuerySpec) -> dict[str, set[str]]:
    """Per agency: every extract column its cohorts' filters and the group-by terms read."""
    fields: dict[str, set[str]] = {}
    for cohort in spec.cohorts.values():
        fields.setdefault(cohort.node, set()).update(where_columns(cohort.where))
    for term in spec.group_by:
        for label, column in _REFERENCE.findall(term):
            if label in spec.cohorts:
                fields.setdefault(spec.cohorts[label].node, set()).add(column)
    return fields


def agreement_problems(
    terms: AgreementTerms, spec: QuerySpec, *, today: dt.date, agency: str | None = None
) -> list[str]:
    """Every way `spec` falls outside `terms`; empty when it is permitted.

    With `agency` set, only that agency's part is checked (a node enforcing its own copy).
    """
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
    for node, columns in sorted(spec_fields(spec).items()):
        if agency is not None and node != agency:
            continue
        allowed = set(terms.contributions.get(node, ()))
        extra = sorted(columns - allowed)
        if extra:
            problems.append(
                f"agreement {terms.id} does not let {node} contribute {', '.join(extra)}"
            )
    permitted = {_normalize_term(t) for t in terms.group_by}
    for term in spec.group_by:
        if _normalize_term(term) not in permitted:
            problems.append(f"agreement {terms.id} does not permit grouping by {term}")
    if spec.min_cell < terms.min_cell:
        problems.append(
            f"min_cell {spec.min_cell} is below agreement {terms.id}'s minimum of {terms.min_cell}"
        )
    if spec.kind == "match":
        requester = spec.cohorts[spec.requester or ""].node
        if requester not in terms.match_requesters:
            problems.append(
                f"agreement {terms.id} does not let {requester} learn membership (match)"
            )
    return problems


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
        contributions={node: sorted(cols) for node, cols in spec_fields(spec).items()},
        group_by=list(spec.group_by),
        analysts=list(analysts),
        match_requesters=requester,
        min_cell=spec.min_cell,
        valid_from=valid_from,
        valid_until=valid_until,
    )
