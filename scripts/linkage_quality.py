"""Precision, recall and F1 of the private protocol on a generated agency pair.

    .venv/bin/python scripts/linkage_quality.py --records 4000 --curve p256

Runs the real private tally in-process (`protocol.driver.run_tally`) on `make_pair`
records, with and without SSN on the left side, maps its links back to record ids
through the recorded shuffles, and scores them against the true pairs.
"""

from __future__ import annotations

import argparse
import time

from crosstally.synth import make_pair
from protocol.blinding import make_engine
from protocol.driver import NodeData, ShuffleTrace, run_tally, traced_entities
from protocol.records import CANONICAL_FIELDS
from protocol.spec import parse_spec


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=4000)
    parser.add_argument("--overlap", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--curve", default="p256")
    parser.add_argument("--errors", default="independent", help="independent or realistic")
    args = parser.parse_args()
    columns = list(CANONICAL_FIELDS)
    for left_ssn in (True, False):
        left, right, truth = make_pair(
            left=args.records, right=args.records, overlap=args.overlap, seed=args.seed,
            left_ssn=left_ssn, error_model=args.errors,
        )  # fmt: skip
        spec = parse_spec({
            "name": "quality", "agreement": "Q", "kind": "tally", "as_of": "2026-06-30",
            "cohorts": {"l": {"node": "L"}, "r": {"node": "R"}}, "population": "l | r",
            "linkage": {"curve": args.curve},
        })  # fmt: skip
        data = {"L": NodeData(left, columns), "R": NodeData(right, columns)}
        trace = ShuffleTrace()
        start = time.perf_counter()
        with make_engine(args.curve) as engine:
            run = run_tally(spec, data, engine=engine, shuffle=trace)
        seconds = time.perf_counter() - start
        found = {
            (a.record_id, b.record_id)
            for e in traced_entities(run, trace)
            if len(e) == 2
            for a in e["l"]
            for b in e["r"]
        }
        tp = len(found & truth)
        precision, recall = tp / max(len(found), 1), tp / max(len(truth), 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        print(
            f"errors={args.errors} left_ssn={left_ssn} links={len(found)} true={len(truth)} "
            f"precision={precision:.4f} "
            f"recall={recall:.4f} F1={f1:.4f} tokens/record={spec.linkage.keys.slots} "
            f"bytes={run.bytes_exchanged} seconds={seconds:.1f}"
        )


if __name__ == "__main__":
    main()
