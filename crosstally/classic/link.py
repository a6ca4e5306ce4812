"""Classic hub linkage in the clear: deterministic passes, then the model, then one-to-one.

Every source sends the hub all of its identifiers. The hub groups each source's own
records of one person (as each agency node does before the private protocol), accepts
deterministic links pass by pass, then model links best first, and merges links into
entities holding at most one person of each source.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from crosstally.classic.deterministic import PASSES, deterministic_pairs
from crosstally.classic.model import ScoredPairs, score_pairs
from crosstally.classic.prepare import SourceRecords, hub_table, prepare_source
from protocol.records import PersonRecord

Person = tuple[str, int]  # (source, person index within the source)
MODEL_RULE = "model"
# Share of true links the deterministic passes are expected to find (for the prior only).
DETERMINISTIC_RECALL = 0.8
Step = Callable[[str], None]


@dataclass(frozen=True)
class PersonLink:
    """An accepted link between persons of two sources and the rule that made it."""

    a: Person
    b: Person
    rule: str
    weight: float | None


@dataclass
class HubLinkage:
    """The classic hub's result: sources, entities, accepted links and every scored pair."""

    sources: dict[str, SourceRecords]
    entities: list[dict[str, int]]
    links: list[PersonLink]
    scores: ScoredPairs | None
    seconds: float
    steps: dict[str, float] = field(default_factory=dict)

    def record_pairs(self, left: str, right: str) -> set[tuple[str, str]]:
        """(left record id, right record id) for every pair of records in one entity."""
        ls, rs = self.sources[left], self.sources[right]
        return {
            (ls.records[i].record_id, rs.records[j].record_id)
            for e in self.entities
            if left in e and right in e
            for i in ls.persons[e[left]]
            for j in rs.persons[e[right]]
        }

    def entity_records(self) -> list[dict[str, list[PersonRecord]]]:
        """Each entity as source -> that person's records."""
        return [
            {
                s: [self.sources[s].records[i] for i in self.sources[s].persons[p]]
                for s, p in e.items()
            }
            for e in self.entities
        ]

    def rules(self) -> Counter[str]:
        """How many accepted links each rule made."""
        return Counter(link.rule for link in self.links)


def person_weights(
    sources: Mapping[str, SourceRecords], scores: ScoredPairs
) -> dict[tuple[Person, Person], float]:
    """Best linkable record-pair weight for each pair of persons (a person may have several)."""
    best: dict[tuple[Person, Person], float] = {}
    keep = scores.linkable()
    for sl, il, sr, ir, w in zip(
        scores.source_l[keep].tolist(), scores.id_l[keep].tolist(),
        scores.source_r[keep].tolist(), scores.id_r[keep].tolist(),
        scores.weight[keep].tolist(), strict=True,
    ):  # fmt: skip
        a = (sl, sources[sl].person_of[il])
        b = (sr, sources[sr].person_of[ir])
        key = (a, b) if a < b else (b, a)
        if w > best.get(key, -math.inf):
            best[key] = w
    return best


def link_sources(
    records: Mapping[str, Sequence[PersonRecord]],
    *,
    today: dt.date | None = None,
    threshold: float = 0.5,
    seed: int = 2026,
    step: Step | None = None,
) -> HubLinkage:
    """Link every source with every other in the clear and merge the links into entities.

    `threshold` is the posterior match probability a model link needs (0.5: more likely a
    match than not, the same default as the private protocol).
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold is a probability strictly between 0 and 1, got {threshold}")
    report = step or (lambda _: None)
    started = time.perf_counter()
    steps: dict[str, float] = {}
    clock = started

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        steps[name] = now - clock
        clock = now

    report("classic: normalizing identifiers")
    sources = {name: prepare_source(name, recs, today=today) for name, recs in records.items()}
    lap("normalize")
    report("classic: deterministic passes")
    names = sorted(sources)
    edges: list[tuple[int, Person, Person]] = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            for tier, pa_, pb in deterministic_pairs(sources[a], sources[b]):
                edges.append((tier, (a, pa_), (b, pb)))
    lap("deterministic")
    report("classic: training the Fellegi–Sunter model (EM) and scoring blocked pairs")
    filled = [sources[n] for n in names if len(sources[n])]
    scores = None
    if len(filled) > 1:
        prior = match_prior(len(edges), [len(s) for s in filled])
        scores = score_pairs([hub_table(s) for s in filled], prior=prior, seed=seed)
    weights = person_weights(sources, scores) if scores is not None else {}
    lap("model")
    report("classic: one-to-one assignment")
    cutoff = math.log2(threshold / (1.0 - threshold))
    model_tier = len(PASSES)
    edges += [(model_tier, a, b) for (a, b), w in weights.items() if w >= cutoff]
    ranked = sorted(
        edges, key=lambda e: (e[0], -weights.get(_key(e[1], e[2]), math.inf), e[1], e[2])
    )
    entities, links = _merge(sources, ranked, weights)
    lap("assign")
    return HubLinkage(sources, entities, links, scores, time.perf_counter() - started, steps)


def match_prior(deterministic_links: int, sizes: Sequence[int]) -> float:
    """Probability that two random records of different sources match.

    Deterministic links over their expected recall, per cross-source record pair (the
    direct estimate Splink documents); at least one link, so the prior is never zero.
    """
    cross = (sum(sizes) ** 2 - sum(n * n for n in sizes)) // 2
    return min(max(deterministic_links, 1) / DETERMINISTIC_RECALL / max(cross, 1), 0.5)


def _key(a: Person, b: Person) -> tuple[Person, Person]:
    return (a, b) if a < b else (b, a)


def _merge(
    sources: Mapping[str, SourceRecords],
    edges: Sequence[tuple[int, Person, Person]],
    weights: Mapping[tuple[Person, Person], float],
) -> tuple[list[dict[str, int]], list[PersonLink]]:
    """Greedy merge in rank order; an entity never holds two persons of one source."""
    parent: dict[Person, Person] = {}
    members: dict[Person, dict[str, int]] = {}

    def find(node: Person) -> Person:
        while parent.get(node, node) != node:
            node = parent[node]
        return node

    links: list[PersonLink] = []
    for tier, a, b in edges:
        ra, rb = find(a), find(b)
        ma = members.get(ra, {ra[0]: ra[1]})
        mb = members.get(rb, {rb[0]: rb[1]})
        if ra == rb or ma.keys() & mb.keys():
            continue
        root, other = min(ra, rb), max(ra, rb)
        parent[other] = root
        members[root] = {**ma, **mb}
        members.pop(other, None)
        rule = PASSES[tier].name if tier < len(PASSES) else MODEL_RULE
        links.append(PersonLink(a, b, rule, weights.get(_key(a, b))))
    entities: dict[Person, dict[str, int]] = {}
    for name in sorted(sources):
        for person in range(len(sources[name].persons)):
            entities.setdefault(find((name, person)), {})[name] = person
    return list(entities.values()), links
