"""The bench's tally through a hub and nodes only, at a size the in-process comparison would
double: time, relay parts and bytes, and each node's peak memory.

    .venv/bin/python scripts/services_scale.py --records 1000000 --curve x25519 --json OUT

`crosstally bench --services` runs the in-process tally first and checks that both paths
release the same table; this runs only the services path (the same records, spec, hub and
node processes), so a state-sized run fits in one sitting. It prints the query's phase
and steps as it goes.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from crosstally.bench import bench_document, write_records
from crosstally.bench_services import run_services
from crosstally.synth import make_parties


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000, help="records per party")
    parser.add_argument("--parties", type=int, default=2)
    parser.add_argument("--overlap", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--curve", default="p256")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--part-bytes", type=int, default=None, help="node part size")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    document = bench_document(args.parties, "standard", args.curve)
    lists, _ = make_parties(
        records=args.records, parties=args.parties, overlap=args.overlap, seed=args.seed
    )
    last = [""]

    def progress(phase: str, done: int, total: int) -> None:
        line = f"{phase}: {done}/{total} steps"
        if line != last[0]:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
            last[0] = line

    with tempfile.TemporaryDirectory(prefix="crosstally-scale-") as tmp:
        paths = {
            label.upper(): write_records(Path(tmp) / f"{label}.csv", records)
            for label, records in zip(document["cohorts"], lists, strict=True)
        }
        del lists
        nodes = {} if args.part_bytes is None else {"part_bytes": args.part_bytes}
        run = run_services(
            document,
            paths,
            Path(tmp) / "services",
            workers=args.workers,
            node_settings=nodes,
            started=lambda: print("hub and nodes are up; submitting", flush=True),
            progress=progress,
        )
    figures = {
        "records": args.records,
        "parties": args.parties,
        "curve": args.curve,
        "workers": args.workers,
        "services_seconds": run.seconds,
        "services_cpu_seconds": run.cpu_seconds,
        "population": run.population,
        "row_sets": run.row_sets,
        "parts": run.parts,
        "relay_bytes": run.relay_bytes,
        "http_bytes": run.http_bytes,
        "node_peak_rss_mb": run.node_peak_rss_mb,
    }
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
