"""Query specs: the JSON document that names cohorts, population, group-bys and controls."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from protocol.errors import InvalidSpec
from protocol.linkage.keys import KeyProfile, load_profile
from protocol.linkage.link import DEFAULT_THRESHOLD

KINDS = ("count", "tally", "match")
CURVES = ("p256", "x25519")
RULES = ("fellegi-sunter", "exact")


@dataclass(frozen=True)
class CohortSpec:
    """One cohort: which node contributes it and which of its records qualify."""

    label: str
    node: str
    where: str = ""


@dataclass(frozen=True)
class LinkageSpec:
    """Key profile, linking rule, and the posterior threshold for accepting a link."""

    keys: KeyProfile
    rule: str = "fellegi-sunter"
    threshold: float = DEFAULT_THRESHOLD
    exact_key: str = "name_dob"
    curve: str = "p256"


@dataclass(frozen=True)
class QuerySpec:
    """A parsed, validated query spec (see DESIGN.md: count, tally, match)."""

    name: str
    agreement: str
    kind: str
    cohorts: dict[str, CohortSpec]
    population: str
    group_by: tuple[str, ...]
    linkage: LinkageSpec
    min_cell: int = 11
    rounding: int | None = None
    as_of: dt.date = field(default_factory=dt.date.today)
    levels: dict[str, tuple[str, ...]] = field(default_factory=dict)
    age_groups: tuple[str, ...] = ("0-13", "14-17", "18-21", "22-26", "27+")
    requester: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def nodes(self) -> list[str]:
        """Participating nodes, in the order their cohorts are listed."""
        return list(dict.fromkeys(c.node for c in self.cohorts.values()))

    def cohorts_of(self, node: str) -> list[CohortSpec]:
        return [c for c in self.cohorts.values() if c.node == node]


def parse_spec(data: Mapping[str, Any]) -> QuerySpec:
    """Validate a query spec document; errors say which field is wrong and what to write."""
    if not isinstance(data, Mapping):
        raise InvalidSpec("a query spec must be a JSON object")
    kind = _require_str(data, "kind")
    if kind not in KINDS:
        raise InvalidSpec(f"spec.kind {kind!r} is not one of {', '.join(KINDS)}")
    cohorts = _cohorts(data.get("cohorts"))
    if len(cohorts) < 2:
        raise InvalidSpec("spec.cohorts needs at least two cohorts")
    if kind in ("count", "match") and len(cohorts) != 2:
        raise InvalidSpec(f"a {kind} query compares exactly two cohorts; got {len(cohorts)}")
    labels = list(cohorts)
    population = str(data.get("population") or " & ".join(labels))
    group_by = tuple(str(g) for g in data.get("group_by") or ())
    if kind != "tally" and group_by:
        raise InvalidSpec(f"spec.group_by is only allowed for tally queries, not {kind}")
    linkage = _linkage(data.get("linkage") or {})
    disclosure = data.get("disclosure") or {}
    min_cell = int(disclosure.get("min_cell", 11))
    if min_cell < 1:
        raise InvalidSpec("spec.disclosure.min_cell must be at least 1")
    rounding = disclosure.get("rounding")
    requester = data.get("requester")
    if kind == "match":
        requester = str(requester or labels[0])
        if requester not in cohorts:
            raise InvalidSpec(f"spec.requester {requester!r} is not a cohort: {', '.join(labels)}")
    return QuerySpec(
        name=_require_str(data, "name"),
        agreement=_require_str(data, "agreement"),
        kind=kind,
        cohorts=cohorts,
        population=population,
        group_by=group_by,
        linkage=linkage,
        min_cell=min_cell,
        rounding=int(rounding) if rounding else None,
        as_of=_date(data.get("as_of")),
        levels={str(k): tuple(str(x) for x in v) for k, v in (data.get("levels") or {}).items()},
        age_groups=tuple(str(a) for a in data.get("age_groups") or QuerySpec.age_groups),
        requester=requester,
        raw=dict(data),
    )


def _require_str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidSpec(f"spec.{key} is required and must be a non-empty string")
    return value.strip()


def _cohorts(raw: Any) -> dict[str, CohortSpec]:
    if not isinstance(raw, Mapping) or not raw:
        raise InvalidSpec(
            'spec.cohorts must be an object like {"dcf": {"node": "DCF", "where": "..."}}'
        )
    out: dict[str, CohortSpec] = {}
    for label, body in raw.items():
        if not str(label).isidentifier():
            raise InvalidSpec(f"cohort label {label!r} must be a simple name (letters, digits, _)")
        if not isinstance(body, Mapping) or not body.get("node"):
            raise InvalidSpec(f"cohort {label!r} needs a 'node' (the agency node that holds it)")
        out[str(label)] = CohortSpec(str(label), str(body["node"]), str(body.get("where") or ""))
    return out


def _linkage(raw: Mapping[str, Any]) -> LinkageSpec:
    rule = str(raw.get("rule", "fellegi-sunter"))
    if rule not in RULES:
        raise InvalidSpec(f"spec.linkage.rule {rule!r} is not one of {', '.join(RULES)}")
    threshold = float(raw.get("threshold", DEFAULT_THRESHOLD))
    if not 0.0 < threshold < 1.0:
        raise InvalidSpec("spec.linkage.threshold is a match probability strictly between 0 and 1")
    keys = load_profile(raw.get("keys", "standard"))
    names = [g.name for g in keys.groups]
    fallback = next((n for n in ("name_dob", "name_street") if n in names), names[0])
    exact_key = str(raw.get("exact_key", fallback))
    if exact_key not in names:
        raise InvalidSpec(
            f"spec.linkage.exact_key {exact_key!r} is not a group of profile {keys.name!r}"
        )
    curve = str(raw.get("curve", "p256"))
    if curve not in CURVES:
        raise InvalidSpec(f"spec.linkage.curve {curve!r} is not one of {', '.join(CURVES)}")
    return LinkageSpec(keys=keys, rule=rule, threshold=threshold, exact_key=exact_key, curve=curve)


def _date(raw: Any) -> dt.date:
    if raw is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(str(raw))
    except ValueError as exc:
        raise InvalidSpec(f"spec.as_of {raw!r} is not an ISO date (YYYY-MM-DD)") from exc
