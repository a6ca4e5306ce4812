"""`crosstally bench --services` runs a real hub and nodes on loopback and reports both paths."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from crosstally.bench import COLUMNS, BenchResult, bench_document, write_records
from crosstally.bench_services import check_same_release, run_services
from crosstally.cli import app
from crosstally.report import bench_table
from crosstally.synth import make_parties
from protocol.blinding import make_engine
from protocol.driver import NodeData, run_tally
from protocol.spec import parse_spec

SERVICE_KEYS = {
    "services_seconds": float, "services_overhead": float, "services_relay_bytes": int,
    "services_http_bytes": int, "services_population": int, "tally_seconds": float,
    "population": int, "bytes_exchanged": int, "tally_cpu_seconds": float,
    "services_cpu_seconds": float, "services_parts": int,
}  # fmt: skip


def test_services_bench_reports_both_paths_consistently(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--records", "300", "--workers", "1", "--services", "--curve", "x25519"]
    args += ["--json", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    for key, kind in SERVICE_KEYS.items():
        assert isinstance(figures[key], kind), key
    assert figures["services"] is True and figures["records"] == 300
    # Same records, same spec, deterministic linkage: the same released population.
    assert figures["services_population"] == figures["population"] > 0
    assert figures["services_seconds"] > 0 and figures["tally_seconds"] > 0
    assert figures["services_cpu_seconds"] > 0 and figures["tally_cpu_seconds"] > 0
    assert math.isclose(
        figures["services_overhead"], figures["services_seconds"] / figures["tally_seconds"] - 1
    )
    # The relay carries the same row sets and tally as the in-process run, sealed (an envelope
    # adds a little), and each sealed row set crosses HTTP twice: up to the hub, down to its
    # recipient.
    relayed, exchanged = figures["services_relay_bytes"], figures["bytes_exchanged"]
    assert exchanged < relayed < exchanged * 1.01
    assert 1.9 * relayed < figures["services_http_bytes"] < 2 * relayed
    assert figures["services_parts"] == 4  # two cohorts, two hops, each under one part
    peaks = figures["services_node_peak_rss_mb"]
    assert set(peaks) == {"A", "B"} and min(peaks.values()) > 10  # one worker: no pool

    shown = io.StringIO()
    Console(width=100, file=shown).print(bench_table(BenchResult(**figures)))
    assert "tally through hub and nodes" in shown.getvalue()
    assert "services overhead" in shown.getvalue() and "CPU time" in shown.getvalue()
    assert "peak memory of node A" in shown.getvalue()


def _extracts(tmp_path: Path, records: int) -> tuple[dict[str, Any], dict[str, Path], list[Any]]:
    lists, _ = make_parties(records=records, parties=2, overlap=0.2, seed=2)
    document = bench_document(2, "standard", "x25519")
    paths = {
        label.upper(): write_records(tmp_path / f"{label}.csv", records)
        for label, records in zip(document["cohorts"], lists, strict=True)
    }
    return document, paths, lists


def test_row_sets_in_many_parts_over_http_release_the_in_process_table(tmp_path: Path) -> None:
    document, paths, lists = _extracts(tmp_path, 200)
    cohorts = zip(document["cohorts"], lists, strict=True)
    data = {label.upper(): NodeData(records, COLUMNS) for label, records in cohorts}
    with make_engine("x25519", 1) as engine:
        expected = run_tally(parse_spec(document), data, engine=engine).result.released
    small = {"part_bytes": 16384}  # about 200 rows of 1,728 bytes: some 20 parts a row set
    run = run_services(document, paths, tmp_path / "services", workers=1, node_settings=small)
    check_same_release(run, expected.to_dict())
    assert run.row_sets == 4 and run.parts > 4 * 15


def test_a_part_over_the_hubs_blob_limit_fails_the_query_at_once(tmp_path: Path) -> None:
    """A 413 is final: the node fails its task instead of re-running it until attempts run out."""
    document, paths, _ = _extracts(tmp_path, 60)
    small = {"max_blob_bytes": "4096"}  # below the node's part size
    with pytest.raises(RuntimeError, match=r"refused start output.*MAX_BLOB_BYTES"):
        run_services(document, paths, tmp_path / "services", workers=1, hub_settings=small)
