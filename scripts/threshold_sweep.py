"""Precision, recall and F1 of the linkage at several match thresholds, on a generated pair.

    .venv/bin/python scripts/threshold_sweep.py --records 4000 --thresholds 0.05 0.1 0.2 0.5 0.9

Links in the clear with the joiner's own code (`protocol.driver.reference_tally`'s
path: the same key slots, candidate generation, EM and one-to-one merging). The
private protocol's links equal these exactly (tests/protocol/test_tally.py), so the
sweep shows what `linkage.threshold` does without paying for the curve work.
"""

from __future__ import annotations

import argparse

from rich.console import Console
from rich.table import Table

from crosstally.synth import make_pair
from protocol.driver import NodeData, clear_token_ids, prepare_all
from protocol.linkage.link import DEFAULT_THRESHOLD, LinkSettings, link_cohorts
from protocol.records import CANONICAL_FIELDS
from protocol.spec import parse_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--thresholds", type=float, nargs="+", default=[0.05, 0.1, DEFAULT_THRESHOLD, 0.5, 0.9]
    )
    args = parser.parse_args()
    table = Table(title=f"make_pair {args.records} x {args.records}, seed {args.seed}")
    for column in ("SSN", "threshold", "links", "true pairs", "precision", "recall", "F1"):
        table.add_column(column, justify="right")
    spec = parse_spec({
        "name": "sweep", "agreement": "S", "kind": "tally", "as_of": "2026-06-30",
        "cohorts": {"l": {"node": "L"}, "r": {"node": "R"}}, "population": "l | r",
    })  # fmt: skip
    keys = spec.linkage.keys
    for left_ssn in (True, False):
        left, right, truth = make_pair(
            left=args.records, right=args.records, overlap=args.overlap, seed=args.seed,
            left_ssn=left_ssn,
        )  # fmt: skip
        columns = list(CANONICAL_FIELDS)
        prepared = prepare_all(spec, {"L": NodeData(left, columns), "R": NodeData(right, columns)})
        ids = {label: clear_token_ids(p.slots) for label, p in prepared.items()}
        for threshold in args.thresholds:
            links = link_cohorts(
                ids,
                keys.group_slices,
                keys.comparison,
                settings=LinkSettings(threshold=threshold),
                paired=keys.paired_slices,
            )
            found = {
                (a.record_id, b.record_id)
                for e in links.entities
                if len(e) == 2
                for a in prepared["l"].persons[e["l"]]
                for b in prepared["r"].persons[e["r"]]
            }
            tp = len(found & truth)
            precision, recall = tp / max(len(found), 1), tp / max(len(truth), 1)
            f1 = 2 * precision * recall / max(precision + recall, 1e-12)
            table.add_row(
                "both sides" if left_ssn else "left missing", f"{threshold:g}", str(len(found)),
                str(len(truth)), f"{precision:.4f}", f"{recall:.4f}", f"{f1:.4f}",
            )  # fmt: skip
    Console().print(table)


if __name__ == "__main__":
    main()
