"""`crosstally evaluate --scenario`: truth, classic and PET tables for a template question."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from crosstally.cli import app
from crosstally.evaluate.scenario import run_scenario


def test_crossover_scenario_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "crossover.json"
    result = CliRunner().invoke(
        app,
        ["evaluate", "--scenario", "crossover", "--people", "4000", "--seed", "5",
         "--json", str(out), "--html", str(tmp_path / "crossover.html")],
        catch_exceptions=False,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    totals = data["totals"]
    # Crossover has no age condition: the linked truth is the generator's own count.
    assert totals["truth"] == data["facts_population"] > 10
    cells = data["cells"]
    for method in ("truth", "classic", "pet"):
        assert sum(c[method] for c in cells) == totals[method]
    assert data["dimensions"] == [
        "dcf.sex", "dcf.ethnicity", "entry_order(dcf.first_contact, jj.first_contact)",
    ]  # fmt: skip
    assert data["abs_error"]["classic"] <= max(2, totals["truth"] // 20)
    for method in ("classic", "pet"):
        membership = data["population_membership"][method]
        assert membership["true_population"] == totals["truth"]
        assert membership["precision"] >= 0.95 and membership["recall"] >= 0.75
    # Released cells are the PET's counts or suppressed, never anything else.
    for cell in cells:
        assert cell["pet_released"] in (None, cell["pet"])
        assert cell["pet_status"] in ("released", "suppressed")
        assert (cell["pet_released"] is None) == (cell["pet_status"] != "released")
    assert any(cell["pet_status"] == "suppressed" for cell in cells)  # a small population
    assert data["pet"]["bytes_exchanged"] > 0
    html = (tmp_path / "crossover.html").read_text()
    assert "PET released" in html and f"{totals['truth']:,}" in html


def test_pebt_match_scenario_counts_the_requesters_members() -> None:
    result = run_scenario("pebt", people=1200, seed=9)
    truth, classic, pet = (result.total(m) for m in ("truth", "classic", "pet"))
    assert truth == result.facts_population > 20
    assert abs(classic - truth) <= 2 and abs(pet - truth) <= max(3, truth // 10)
    assert result.membership["classic"].precision >= 0.98
    assert list(result.tables["truth"]) == [("all",)]
