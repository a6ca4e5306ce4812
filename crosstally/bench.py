"""`crosstally bench`: the private tally against the speed limit of its own curve work.

One run generates the parties' records, measures the blinding engine's raw rate on
one core, runs the tally end to end on all cores, measures the raw rate again, and
runs openmined-psi's own two-party cardinality on the same records as a baseline.
`ec_bound_seconds` is the time the tally's curve operations take at the raw rate (the
mean of the two samples) on the same cores, so `overhead_ratio` is everything else
(hashing into keys, Paillier, shuffles, serialization, linking) as a multiple of the
unavoidable. The machine's speed can drift during a long run; the two samples show by
how much (`raw_rates_us`).
"""

from __future__ import annotations

import csv
import os
import resource
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from crosstally.parties import run_isolated
from crosstally.synth import make_parties
from protocol.blinding import CURVE_FUNCTIONS, make_engine
from protocol.driver import NodeData, run_tally
from protocol.psi import CountClient, answer_count
from protocol.records import PersonRecord
from protocol.spec import QuerySpec, parse_spec
from protocol.tally import TallyNode
from protocol.timing import wall_seconds

COLUMNS = ["record_id", "person_id", "first_name", "middle_name", "last_name", "dob", "sex", "ssn",
           "zip", "town", "address"]  # fmt: skip
RATE_SAMPLE = 8192


@dataclass
class BenchResult:
    """The figures `--json` writes (see the issue for their meaning)."""

    records: int
    parties: int
    curve: str
    tokens_per_record: float
    tally_seconds: float
    ec_operations: int
    ec_bound_seconds: float
    overhead_ratio: float
    psi_ca_seconds: float | None  # None only in the checkpoint written before the baseline runs
    paillier_seconds: float
    paillier_share: float
    bytes_exchanged: int
    peak_rss_mb: float
    workers: int
    hash_us_per_op: float  # mean of the samples before and after the tally
    blind_us_per_op: float
    raw_rates_us: dict[str, list[float]]  # "before" and "after": [hash, re-blind] per op
    psi_ca_count: int | None
    population: int
    phases: dict[str, float]
    generate_seconds: float
    isolated: bool = False
    party_peak_rss_mb: dict[str, float] | None = None
    services: bool = False
    services_seconds: float | None = None
    services_overhead: float | None = None
    services_relay_bytes: int | None = None
    services_http_bytes: int | None = None
    services_population: int | None = None
    tally_cpu_seconds: float | None = None
    services_cpu_seconds: float | None = None
    services_parts: int | None = None  # sealed parts the relay carried, all row sets together
    services_node_peak_rss_mb: dict[str, float] | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def raw_rates(curve: str, sample: int = RATE_SAMPLE, repeats: int = 3) -> tuple[float, float]:
    """Seconds per hash-and-blind and per re-blind on one core (this process).

    Each is the median of `repeats` timings of `sample` items, so one slow repeat (a
    first call, a moment of contention) does not set the bound.
    """
    functions = CURVE_FUNCTIONS[curve]
    engine = make_engine(curve, workers=1)
    hashed, blinded = [], []
    for _ in range(repeats):
        items = [secrets.token_bytes(24) for _ in range(sample)]
        secret_a, secret_b = engine.new_secret(), engine.new_secret()
        start = time.perf_counter()
        points = functions.hash_and_blind(secret_a, items)
        hashed.append((time.perf_counter() - start) / sample)
        start = time.perf_counter()
        functions.blind(secret_b, points)
        blinded.append((time.perf_counter() - start) / sample)
    return statistics.median(hashed), statistics.median(blinded)


def bench_document(parties: int, keys: str, curve: str) -> dict[str, Any]:
    """The bench's query spec as submitted to a hub: every party's sex, over the intersection."""
    labels = [chr(ord("a") + k) for k in range(parties)]
    return {
        "name": "bench", "agreement": "BENCH", "kind": "tally", "as_of": "2026-06-30",
        "cohorts": {label: {"node": label.upper()} for label in labels},
        "population": " & ".join(labels),
        "group_by": [f"{labels[0]}.sex", f"{labels[1]}.sex"],
        "linkage": {"keys": keys, "curve": curve},
    }  # fmt: skip


def bench_spec(parties: int, keys: str, curve: str) -> QuerySpec:
    return parse_spec(bench_document(parties, keys, curve))


def psi_cardinality(
    spec: QuerySpec, lists: Sequence[Sequence[PersonRecord]], *, workers: int = 1
) -> tuple[int, float]:
    """openmined-psi's own PSI cardinality on one key per record (exact name + DOB).

    Each party's records are grouped into persons first, in a pool of `workers` as the
    tally's nodes do; only the cardinality protocol itself is timed.
    """
    from protocol.cohort import WhereClause
    from protocol.psi import exact_keys

    where = WhereClause("", COLUMNS, as_of=spec.as_of)
    keys = []
    with make_engine(spec.linkage.curve, workers=workers) as engine:
        for label, records in zip(spec.cohorts, lists[:2], strict=False):
            node = TallyNode(label, records, COLUMNS, engine=engine)
            prepared = node.prepare(label, where, spec.linkage.keys)
            keys.append(exact_keys(prepared, spec.linkage.keys, "name_dob"))
    start = time.perf_counter()
    client = CountClient("bench")
    count = client.count(answer_count(client.request(keys[0]), keys[1], structure="gcs"))
    return count, time.perf_counter() - start


@dataclass
class _Tally:
    """The in-process tally's figures, from either driver."""

    seconds: float
    operations: int
    phases: dict[str, float]
    bytes_exchanged: int
    population: int
    released: dict[str, Any]
    cpu_seconds: float
    party_peaks: dict[str, float] | None = None


def cpu_seconds() -> float:
    """CPU time of this process and of every child process it has waited for."""
    usage = [resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def _in_process(spec: QuerySpec, data: dict[str, NodeData], *, workers: int) -> _Tally:
    cpu = cpu_seconds()
    with make_engine(spec.linkage.curve, workers=workers) as engine:
        start = time.perf_counter()
        run = run_tally(spec, data, engine=engine)
        seconds = time.perf_counter() - start
        operations = engine.operations()
    cpu = cpu_seconds() - cpu  # the pool's workers are waited for when the engine closes
    timings = [*(n.timings for n in run.nodes.values()), run.joiner.timings, run.hub.timings]
    phases = wall_seconds(span for t in timings for span in t.spans)
    result = run.result
    return _Tally(
        seconds, operations, phases, run.bytes_exchanged, result.population,
        result.released.to_dict(), cpu,
    )  # fmt: skip


def _isolated(spec: QuerySpec, paths: dict[str, Path], *, workers: int) -> _Tally:
    cpu = cpu_seconds()
    run = run_isolated(spec, paths, workers=workers)
    return _Tally(
        run.seconds, run.ec_operations, run.timings, run.bytes_exchanged, run.result.population,
        run.result.released.to_dict(), cpu_seconds() - cpu, run.party_peak_rss_mb,
    )  # fmt: skip


def run_bench(
    *,
    records: int,
    parties: int = 2,
    keys: str = "standard",
    overlap: float = 0.1,
    seed: int = 1,
    workers: int | None = None,
    curve: str = "p256",
    isolated: bool = False,
    services: bool = False,
    step: Callable[[str], None] = lambda _: None,
    query_progress: Callable[[str, int, int], None] = lambda *_: None,
    checkpoint: Callable[[BenchResult], None] = lambda _: None,
) -> BenchResult:
    """Measure one tally; `services` runs it a second time through a hub and nodes on loopback.

    `step` announces each stage; `query_progress` sees the services query's phase and steps.
    `checkpoint` gets the tally's figures before the openmined-psi baseline runs (without
    the baseline's), so a long run keeps them even if the baseline is stopped.
    """
    workers = workers or os.cpu_count() or 1
    step("generating records")
    start = time.perf_counter()
    lists, _ = make_parties(records=records, parties=parties, overlap=overlap, seed=seed)
    generated = time.perf_counter() - start
    document = bench_document(parties, keys, curve)
    spec = parse_spec(document)
    data = {
        label.upper(): NodeData(recs, COLUMNS)
        for label, recs in zip(spec.cohorts, lists, strict=True)
    }
    step("measuring the curve's raw rate on one core")
    before = raw_rates(curve)
    services_run = None
    with tempfile.TemporaryDirectory(prefix="crosstally-bench-") as tmp:
        paths: dict[str, Path] = {}
        if isolated or services:
            paths = {n: write_records(Path(tmp) / f"{n}.csv", d.records) for n, d in data.items()}
        step("running the private tally on all cores")
        if isolated:
            del data, lists
            tally = _isolated(spec, paths, workers=workers)
            lists = []
        else:
            tally = _in_process(spec, data, workers=workers)
            del data
        after = raw_rates(curve)
        if services:
            from crosstally.bench_services import check_same_release, run_services

            step(f"starting a hub and {parties} agency nodes on 127.0.0.1")
            services_run = run_services(
                document,
                paths,
                Path(tmp) / "services",
                workers=workers,
                started=lambda: step("running the tally through the hub and nodes"),
                progress=query_progress,
            )
            check_same_release(services_run, tally.released)
    slots = spec.linkage.keys.slots
    rows = tally.operations // (slots * parties)
    hash_ops, blind_ops = rows * slots, rows * slots * (parties - 1)
    t_hash, t_blind = ((b + a) / 2 for b, a in zip(before, after, strict=True))
    ec_bound = (hash_ops * t_hash + blind_ops * t_blind) / workers
    paillier = tally.phases.get("paillier", 0.0)
    peak = max(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    )
    result = BenchResult(
        records=records,
        parties=parties,
        curve=curve,
        tokens_per_record=float(slots),
        tally_seconds=tally.seconds,
        ec_operations=tally.operations,
        ec_bound_seconds=ec_bound,
        overhead_ratio=tally.seconds / ec_bound if ec_bound else 0.0,
        psi_ca_seconds=None,
        paillier_seconds=paillier,
        paillier_share=paillier / tally.seconds if tally.seconds else 0.0,
        bytes_exchanged=tally.bytes_exchanged,
        peak_rss_mb=peak / 1024,
        workers=workers,
        hash_us_per_op=t_hash * 1e6,
        blind_us_per_op=t_blind * 1e6,
        raw_rates_us={
            "before": [t * 1e6 for t in before],
            "after": [t * 1e6 for t in after],
        },
        psi_ca_count=None,
        population=tally.population,
        phases=tally.phases,
        generate_seconds=generated,
        isolated=isolated,
        party_peak_rss_mb=tally.party_peaks,
        tally_cpu_seconds=tally.cpu_seconds,
    )
    if services_run is not None:
        result.services = True
        result.services_seconds = services_run.seconds
        result.services_overhead = services_run.seconds / tally.seconds - 1
        result.services_relay_bytes = services_run.relay_bytes
        result.services_http_bytes = services_run.http_bytes
        result.services_population = services_run.population
        result.services_cpu_seconds = services_run.cpu_seconds
        result.services_parts = services_run.parts
        result.services_node_peak_rss_mb = services_run.node_peak_rss_mb
    checkpoint(result)
    step("running openmined-psi's PSI cardinality baseline")
    if not lists:
        lists, _ = make_parties(records=records, parties=parties, overlap=overlap, seed=seed)
    result.psi_ca_count, result.psi_ca_seconds = psi_cardinality(spec, lists, workers=workers)
    return result


def write_records(path: Path, records: Sequence[PersonRecord]) -> Path:
    """A party's records as a canonical CSV extract (what its node would read)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for r in records:
            writer.writerow([r.value(c) or "" for c in COLUMNS])
    return path
