"""`crosstally bench --services` runs a real hub and nodes on loopback and reports both paths."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from crosstally.bench import BenchResult, bench_document, write_records
from crosstally.bench_services import run_services
from crosstally.cli import app
from crosstally.report import bench_table
from crosstally.synth import make_parties

SERVICE_KEYS = {
    "services_seconds": float, "services_overhead": float, "services_relay_bytes": int,
    "services_http_bytes": int, "services_population": int, "tally_seconds": float,
    "population": int, "bytes_exchanged": int, "tally_cpu_seconds": float,
    "services_cpu_seconds": float,
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

    shown = io.StringIO()
    Console(width=100, file=shown).print(bench_table(BenchResult(**figures)))
    assert "tally through hub and nodes" in shown.getvalue()
    assert "services overhead" in shown.getvalue() and "CPU time" in shown.getvalue()


def test_a_row_set_over_the_hubs_blob_limit_fails_the_query_at_once(tmp_path: Path) -> None:
    """A 413 is final: the node fails its task instead of re-running it until attempts run out."""
    lists, _ = make_parties(records=60, parties=2, overlap=0.1, seed=2)
    document = bench_document(2, "standard", "x25519")
    paths = {
        label.upper(): write_records(tmp_path / f"{label}.csv", records)
        for label, records in zip(document["cohorts"], lists, strict=True)
    }
    small = {"max_blob_bytes": "4096"}
    with pytest.raises(RuntimeError, match=r"refused start output.*MAX_BLOB_BYTES"):
        run_services(document, paths, tmp_path / "services", workers=1, hub_settings=small)
