"""`crosstally bench` runs at a tiny size and writes well-formed, self-consistent JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from crosstally.bench import BenchResult, run_bench
from crosstally.cli import app

KEYS = {
    "records": int, "parties": int, "tokens_per_record": float, "tally_seconds": float,
    "ec_operations": int, "ec_bound_seconds": float, "overhead_ratio": float,
    "psi_ca_seconds": float, "paillier_seconds": float, "paillier_share": float,
    "bytes_exchanged": int, "peak_rss_mb": float,
}  # fmt: skip


def test_bench_json_has_the_documented_keys_and_consistent_figures(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        app, ["bench", "--records", "150", "--workers", "1", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    for key, kind in KEYS.items():
        assert isinstance(figures[key], kind), key
    assert figures["records"] == 150 and figures["parties"] == 2
    slots = figures["tokens_per_record"]
    # Every row is hashed once by its owner and re-blinded once by the other party.
    rows = figures["ec_operations"] / (2 * slots)
    assert rows == int(rows) and 150 <= rows <= 300
    assert math.isclose(
        figures["overhead_ratio"], figures["tally_seconds"] / figures["ec_bound_seconds"]
    )
    assert math.isclose(
        figures["paillier_share"], figures["paillier_seconds"] / figures["tally_seconds"]
    )
    assert 0 < figures["paillier_seconds"] < figures["tally_seconds"]
    assert figures["bytes_exchanged"] > rows * slots * 33
    assert figures["psi_ca_count"] <= 15  # 10% overlap of 150, exact key only
    # The bound uses the mean of the raw rates sampled before and after the tally.
    before, after = figures["raw_rates_us"]["before"], figures["raw_rates_us"]["after"]
    assert math.isclose(figures["hash_us_per_op"], (before[0] + after[0]) / 2)
    assert math.isclose(figures["blind_us_per_op"], (before[1] + after[1]) / 2)
    assert all(rate > 0 for rate in [*before, *after])


def test_bench_prints_a_table_without_json() -> None:
    result = CliRunner().invoke(app, ["bench", "--records", "60", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "overhead ratio" in result.output and "curve bound" in result.output


def test_isolated_bench_reports_each_party_and_the_x25519_engine(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--records", "80", "--workers", "1", "--isolated", "--curve", "x25519"]
    result = CliRunner().invoke(app, [*args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out.read_text())
    assert figures["isolated"] is True and figures["curve"] == "x25519"
    assert set(figures["party_peak_rss_mb"]) == {"A", "B"}
    assert all(peak > 20 for peak in figures["party_peak_rss_mb"].values())
    assert figures["ec_operations"] % (2 * figures["tokens_per_record"]) == 0
    # Both parties run at once; a phase counts the wall time some party spent in it.
    assert all(0 <= seconds <= figures["tally_seconds"] for seconds in figures["phases"].values())


def test_tally_figures_are_handed_over_before_the_baseline_runs() -> None:
    seen: list[dict[str, object]] = []
    steps: list[str] = []

    def checkpoint(result: BenchResult) -> None:
        seen.append(result.to_dict())
        steps.append("checkpoint")

    result = run_bench(records=60, workers=1, step=steps.append, checkpoint=checkpoint)
    assert steps[-2:] == ["checkpoint", "running openmined-psi's PSI cardinality baseline"]
    (early,) = seen
    assert early["psi_ca_seconds"] is None and early["psi_ca_count"] is None
    assert early["tally_seconds"] == result.tally_seconds and result.tally_seconds > 0
    assert isinstance(result.psi_ca_seconds, float) and isinstance(result.psi_ca_count, int)
