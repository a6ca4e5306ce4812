"""What a task asks of this agency, and an agreement's terms, in words for the data steward."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from protocol.errors import InvalidSpec
from protocol.spec import QuerySpec
from services.governance import spec_reads
from services.wire import AgreementTerms


def task_brief(
    spec: QuerySpec,
    *,
    agency: str,
    ring: Sequence[str],
    joiner: str,
    parties: Iterable[str],
    terms: AgreementTerms | None,
) -> dict[str, Any]:
    """The facts a steward decides on: this agency's cohorts and filters, the columns the
    query reads here, the grouping, who the node would exchange data with, and the node's
    own copy of the agreement in words (None when it holds none). JSON-ready."""
    try:
        columns: list[str] | str = sorted(spec_reads(spec).get(agency, set()))
    except InvalidSpec as exc:
        columns = f"cannot be read: {exc}"
    return {
        "name": spec.name,
        "kind": spec.kind,
        "agreement": spec.agreement,
        "as_of": spec.as_of.isoformat(),
        "cohorts": [
            {"label": c.label, "node": c.node, "where": c.where} for c in spec.cohorts.values()
        ],
        "population": spec.population,
        "columns": columns,
        "group_by": list(spec.group_by),
        "levels": {k: list(v) for k, v in spec.levels.items()},
        "partners": [n for n in ring if n != agency],
        "ring": list(ring),
        "joiner": joiner,
        "parties": sorted(set(parties) - {agency}),
        "min_cell": spec.min_cell,
        "rounding": spec.rounding,
        "linkage": {
            "profile": spec.linkage.keys.name,
            "rule": spec.linkage.rule,
            "threshold": spec.linkage.threshold,
            "curve": spec.linkage.curve,
        },
        "requester": spec.requester,
        "agreement_terms": None if terms is None else agreement_lines(terms),
    }


def _filter(where: str | None) -> str:
    if where is None:
        return "any filter over the columns its node contributes"
    return f"records where {where}" if where.strip() else "every record (no filter)"


def brief_lines(brief: Mapping[str, Any], *, agency: str) -> list[str]:
    """`task_brief` as lines of plain text (`crosstally node held`)."""
    if not brief:
        return ["(held before nodes kept what a task asks; see the hub's query status)"]
    lines = [
        f"asks {agency} for: a {brief['kind']} query {brief['name']!r} under agreement "
        f"{brief['agreement']}, as of {brief['as_of']}"
    ]
    for cohort in brief["cohorts"]:
        whose = "your cohort" if cohort["node"] == agency else f"cohort at {cohort['node']}"
        lines.append(f"{whose} {cohort['label']}: {_filter(cohort['where'])}")
    columns = brief["columns"]
    shown = (", ".join(columns) or "none") if isinstance(columns, list) else columns
    lines.append(f"columns it reads from {agency}: {shown}")
    lines.append(f"population: {brief['population']}")
    group_by = brief["group_by"]
    lines.append(f"grouped by: {', '.join(group_by)}" if group_by else "no grouping")
    for term, levels in brief["levels"].items():
        lines.append(f"  categories of {term}: {', '.join(levels)}")
    partners = ", ".join(brief["partners"]) or "none"
    lines.append(f"partners: {partners} (ring {' -> '.join(brief['ring'])})")
    lines.append(f"joiner: {brief['joiner']} (it alone sees which rows link)")
    link = brief["linkage"]
    lines.append(
        f"linkage: key profile {link['profile']}, {link['rule']} at threshold "
        f"{link['threshold']}, curve {link['curve']}"
    )
    rounding = f"rounded to {brief['rounding']}" if brief["rounding"] else "not rounded"
    lines.append(f"disclosure: cells below {brief['min_cell']} suppressed, counts {rounding}")
    words = brief["agreement_terms"]
    if words is None:
        lines.append(f"agreement {brief['agreement']}: {agency} holds no copy (not signed here)")
    else:
        lines.append(f"agreement {brief['agreement']} as {agency} signed it:")
        lines += [f"  {line}" for line in words]
    return lines


def agreement_lines(terms: AgreementTerms) -> list[str]:
    """An agreement's terms in words, one statement a line (docs/agreements.md reads one)."""
    name = terms.title or terms.id
    lines = [
        f"{terms.id} ({name}): {', '.join(terms.participants)} permit "
        f"{' and '.join(terms.kinds)} queries"
    ]
    missing = terms.missing_terms()
    if missing:
        lines.append(
            f"it does not bind {', '.join(missing)}, so it permits no query (signed before "
            "agreements named them)"
        )
    for label, cohort in (terms.cohorts or {}).items():
        lines.append(f"cohort {label} at {cohort.node}: {_filter(cohort.where)}")
    if terms.population:
        lines.append(f"the table counts the population {terms.population}")
    for agency, columns in terms.contributions.items():
        lines.append(f"{agency} lets queries read: {', '.join(columns) or 'no column'}")
    if terms.group_by:
        lines.append(f"grouped by exactly: {', '.join(terms.group_by)}")
    for term, levels in terms.levels.items():
        lines.append(f"  categories of {term}: {', '.join(levels)}")
    if terms.age_groups:
        lines.append(f"age bands: {', '.join(terms.age_groups)}")
    if terms.linkage is not None:
        link = terms.linkage
        lines.append(
            f"linkage: key profile {link.profile} (sha256 {link.profile_sha256[:12]}…), "
            f"{link.rule} at threshold {link.threshold}, exact key {link.exact_key}, "
            f"curve {link.curve}"
        )
    rounding = f"rounded to {terms.rounding}" if terms.rounding else "not rounded"
    lines.append(f"cells below {terms.min_cell} suppressed; counts {rounding}")
    if terms.as_of_from and terms.as_of_until:
        lines.append(f"data taken as of a day from {terms.as_of_from} to {terms.as_of_until}")
    lines.append(f"in force from {terms.valid_from} to {terms.valid_until}")
    analysts = ", ".join(terms.analysts) or "nobody"
    kept = (
        f"destroyed after {terms.destroy_results_after}"
        if terms.destroy_results_after
        else "kept without a destruction date"
    )
    lines.append(f"results read by {analysts}; {kept}")
    if terms.match_requesters:
        requesters = ", ".join(terms.match_requesters)
        lines.append(f"may learn which of their records matched: {requesters}")
    return lines
