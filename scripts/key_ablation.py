"""Score candidate key groups on a labelled training pair: recall each group adds per token.

    .venv/bin/python scripts/key_ablation.py --records 3000 --errors realistic --seed 11

Generates a training pair with `make_pair` (use a seed other than the evaluation seeds),
derives each candidate group's tokens in the clear, and reports for every group the share
of true pairs that agree on it alone and the proposing cross pairs it makes (pairs sharing
a token held by at most `MAX_PAIRS_PER_TOKEN` pairs). It then picks groups greedily by
the true pairs each newly covers per slot, within the token budget, and prints that
ablation table. Candidates are the groups of every built-in profile plus `--pool FILE`
(a JSON list of {"name", "slots", "templates"}). Coverage is a ceiling for recall: the
pair must still score above the threshold at the joiner.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter
from pathlib import Path

from crosstally.synth import make_pair
from protocol.linkage.candidates import MAX_PAIRS_PER_TOKEN
from protocol.linkage.keys import PROFILES, KeyGroup, load_profile
from protocol.linkage.normalize import normalize_person
from protocol.records import PersonRecord

AS_OF = dt.date(2026, 6, 30)


def candidates(pool: Path | None) -> list[KeyGroup]:
    groups: dict[str, KeyGroup] = {}
    for name in PROFILES:
        for group in load_profile(name).groups:
            groups.setdefault(f"{name}.{group.name}", group)
    if pool is not None:
        extra = json.loads(pool.read_text(encoding="utf-8"))
        checked = load_profile({"name": "pool", "groups": extra})  # validates every template
        groups.update({f"pool.{g.name}": g for g in checked.groups})
    return list(groups.values())


def tokens(groups: list[KeyGroup], records: list[PersonRecord]) -> list[list[set[str]]]:
    out: list[list[set[str]]] = []
    for record in records:
        person, cache = normalize_person(record, today=AS_OF), {}
        out.append([set(g.tokens(person, cache)) for g in groups])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--errors", default="realistic", help="error model: independent, realistic")
    parser.add_argument("--profile", default="typical", help="error rates: clean, typical, heavy")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--budget", type=int, default=48, help="token slots per record")
    parser.add_argument("--pool", type=Path, default=None)
    args = parser.parse_args()
    groups = candidates(args.pool)
    names = [g.name for g in groups]
    cover: list[set[int]] = [set() for _ in groups]
    proposing = Counter[int]()
    offset = 0
    for left_ssn in (True, False):
        left, right, truth = make_pair(
            left=args.records, right=args.records, overlap=0.5, seed=args.seed,
            left_ssn=left_ssn, error_profile=args.profile, error_model=args.errors,
        )  # fmt: skip
        lt, rt = tokens(groups, left), tokens(groups, right)
        for k in range(len(groups)):
            lc = Counter(t for row in lt for t in row[k])
            rc = Counter(t for row in rt for t in row[k])
            proposing[k] += sum(
                lc[t] * rc[t] for t in lc if t in rc and lc[t] * rc[t] <= MAX_PAIRS_PER_TOKEN
            )
        li = {r.record_id: i for i, r in enumerate(left)}
        ri = {r.record_id: i for i, r in enumerate(right)}
        for n, (a, b) in enumerate(sorted(truth)):
            for k in range(len(groups)):
                if lt[li[a]][k] & rt[ri[b]][k]:
                    cover[k].add(offset + n)
        offset += len(truth)
    total = offset
    print(f"true pairs {total} ({args.errors}/{args.profile}, seed {args.seed}, SSN on both "
          "sides and on one)")  # fmt: skip
    print(f"{'group':26} {'slots':>5} {'alone':>7} {'proposing':>10}")
    for k, g in enumerate(groups):
        print(f"{g.name:26} {g.slots:5d} {len(cover[k]) / total:7.4f} {proposing[k]:10d}")
    print(f"\ngreedy within {args.budget} slots:")
    print(f"{'group':26} {'slots':>5} {'used':>5} {'adds':>6} {'per slot':>9} {'recall':>7}")
    chosen: set[int] = set()
    covered: set[int] = set()
    used = 0
    while True:
        fits = [
            k
            for k in range(len(groups))
            if k not in chosen and used + groups[k].slots <= args.budget
        ]
        best = max(fits, key=lambda k: len(cover[k] - covered) / groups[k].slots, default=None)
        if best is None or not cover[best] - covered:
            break
        gain = len(cover[best] - covered)
        chosen.add(best)
        covered |= cover[best]
        used += groups[best].slots
        print(f"{names[best]:26} {groups[best].slots:5d} {used:5d} {gain:6d} "
              f"{gain / groups[best].slots:9.1f} {len(covered) / total:7.4f}")  # fmt: skip
    print(f"uncovered {total - len(covered)} of {total}")


if __name__ == "__main__":
    main()
