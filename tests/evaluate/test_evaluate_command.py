"""`crosstally evaluate` end to end through the real CLI: JSON shape, HTML, no truth, bad input."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crosstally.cli import app
from protocol.linkage.keys import load_profile

runner = CliRunner()
METHOD_KEYS = {"links", "match_rate", "precision", "recall", "f1", "seconds"}


def evaluate(*args: str | Path) -> Any:
    return runner.invoke(app, ["evaluate", *map(str, args)], catch_exceptions=False)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pair_result(
    world_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("evaluate")
    # Truth as left_id,right_id pairs, derived from the synth truth file.
    person: dict[str, list[str]] = {}
    for row in rows(world_files["truth"]):
        person.setdefault(row["person_id"], []).append(row["record_id"])
    with (out / "pairs.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["left_id", "right_id"])
        for ids in person.values():
            writer.writerows(
                (a, b) for a in ids if a.startswith("DCF-") for b in ids if b.startswith("JB-")
            )
    result = evaluate(
        "--left", world_files["dcf"], "--right", world_files["jbcssd"],
        "--truth", out / "pairs.csv", "--json", out / "r.json", "--html", out / "r.html",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return json.loads((out / "r.json").read_text()), (out / "r.html").read_text()


def test_json_has_the_documented_shape_and_consistent_values(
    pair_result: tuple[dict[str, Any], str], world_files: dict[str, Path]
) -> None:
    data, _ = pair_result
    assert {"left_records", "right_records", "methods", "concordance"} <= set(data)
    assert data["left_records"] == len(rows(world_files["dcf"]))
    assert data["right_records"] == len(rows(world_files["jbcssd"]))
    classic, pet = data["methods"]["classic"], data["methods"]["pet"]
    assert set(classic) >= METHOD_KEYS
    assert METHOD_KEYS | {"tokens_per_record", "bytes_exchanged"} <= set(pet)
    assert isinstance(pet["bytes_exchanged"], int) and pet["bytes_exchanged"] > 100_000
    assert pet["tokens_per_record"] >= 30
    truth_pairs = data["truth"]["pairs"]
    assert truth_pairs > 10
    for method in (classic, pet):
        assert method["precision"] >= 0.95 and method["recall"] >= 0.8
        f1 = 2 * method["precision"] * method["recall"] / (method["precision"] + method["recall"])
        assert method["f1"] == pytest.approx(f1)
        assert method["true_links"] == pytest.approx(method["recall"] * truth_pairs)
        assert 0 < method["match_rate"] <= 1 and method["seconds"] > 0
    assert classic["f1"] >= 0.98
    assert data["recall_by_error"] is None  # left_id,right_id truth names no error classes
    counts = data["concordance"]
    assert counts["both"] + counts["classic_only"] == classic["links"]
    assert counts["both"] + counts["pet_only"] == pet["links"]
    sample = data["discordant_sample"]["classic_only"]
    assert len(sample) == min(counts["classic_only"], 20)
    assert all(set(s) == {"left_id", "right_id", "true_pair"} for s in sample)


def test_html_is_self_contained_and_shows_the_comparison(
    pair_result: tuple[dict[str, Any], str],
) -> None:
    data, html = pair_result
    assert html.startswith("<!DOCTYPE html>") and html.count("<svg") >= 5
    # Nothing is fetched: no scripts, stylesheets, images or fonts from anywhere.
    assert not re.search(r"<script|<link|<img|src=|url\(|@import", html)
    assert re.findall(r"https?://[^\"' ]+", html) == ["http://www.w3.org/2000/svg"] * html.count(
        "<svg"
    )
    for text in ("Concordance of links", "Score distribution", "What each party saw",
                 "Data quality of the inputs", "every identifier"):  # fmt: skip
        assert text in html
    assert f"{data['methods']['pet']['bytes_exchanged']:,}" in html


def test_without_truth_quality_figures_are_null(
    world_files: dict[str, Path], tmp_path: Path
) -> None:
    result = evaluate(
        "--left",
        world_files["dcf"],
        "--right",
        world_files["jbcssd"],
        "--json",
        tmp_path / "r.json",
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    for method in data["methods"].values():
        assert method["precision"] is None and method["recall"] is None and method["f1"] is None
        assert method["links"] > 10
    assert data["truth"] is None
    assert "precision, recall and F1 are not available" in result.output


def write_without(source: Path, path: Path, dropped: set[str]) -> list[dict[str, str]]:
    """The extract without the dropped columns; returns its rows."""
    records = rows(source)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, [c for c in records[0] if c not in dropped])
        writer.writeheader()
        writer.writerows({k: v for k, v in r.items() if k not in dropped} for r in records)
    return records


def test_an_extract_without_dob_or_ssn_is_refused_naming_both(
    world_files: dict[str, Path], tmp_path: Path
) -> None:
    broken = tmp_path / "names_only.csv"
    write_without(world_files["jbcssd"], broken, {"dob", "ssn"})
    result = evaluate("--left", world_files["dcf"], "--right", broken)
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert f"{broken}: required column(s) 'dob' or 'ssn' not found" in message
    assert "needs first_name, last_name and at least one of dob or ssn" in message
    assert "--map" in message
    no_name = tmp_path / "no_last.csv"
    write_without(world_files["jbcssd"], no_name, {"last_name"})
    result = evaluate("--left", world_files["dcf"], "--right", no_name)
    assert result.exit_code == 2
    assert f"{no_name}: required column(s) 'last_name' not found" in " ".join(result.output.split())


def test_an_extract_without_dob_links_and_reports_recall_by_error_class(
    world_files: dict[str, Path], tmp_path: Path
) -> None:
    # Wage records carry no date of birth: the right extract has SSNs but no dob column.
    no_dob = tmp_path / "jb_no_dob.csv"
    right = write_without(world_files["jbcssd"], no_dob, {"dob"})
    right_ids = {r["record_id"] for r in right}
    truth = tmp_path / "truth.csv"
    with truth.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["agency", "record_id", "person_id", "errors"])
        for row in rows(world_files["truth"]):
            classes = "dob_missing" if row["record_id"] in right_ids else ""
            writer.writerow([row["agency"], row["record_id"], row["person_id"], classes])
    result = evaluate(
        "--left", world_files["dcf"], "--right", no_dob, "--truth", truth,
        "--json", tmp_path / "r.json", "--html", tmp_path / "r.html",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "r.json").read_text())
    classic, pet = data["methods"]["classic"], data["methods"]["pet"]
    assert classic["f1"] >= 0.97, classic
    assert pet["links"] > 0
    # Without DOB on one side the private protocol takes the profile built for it.
    assert pet["tokens_per_record"] == load_profile("no_dob").slots
    assert pet["f1"] >= 0.9, pet
    by_error = data["recall_by_error"]
    # Every true pair has the right record's class; nothing else was named.
    assert [c["class"] for c in by_error["classes"]] == ["dob_missing"]
    row = by_error["classes"][0]
    assert row["pairs"] == data["truth"]["pairs"]
    for name, method in (("classic", classic), ("pet", pet)):
        assert row[name]["found"] == method["true_links"]
    assert [b["errors"] for b in by_error["by_error_count"]] == ["0", "1", "2", "3+"]
    assert by_error["by_error_count"][1]["pairs"] == data["truth"]["pairs"]
    html = (tmp_path / "r.html").read_text()
    assert "Recall by error class" in html and "dob_missing" in html


def test_duplicate_ids_and_broken_rows_are_reported_and_the_rest_is_linked(
    world_files: dict[str, Path], tmp_path: Path
) -> None:
    records = rows(world_files["jbcssd"])
    first, second = records[0], {**records[1], "dob": "2003-02-30"}
    bad = tmp_path / "jb_bad.csv"
    with bad.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(first)
        # line 3 repeats line 2's record id; line 4 has too few fields; line 5 a bad DOB
        writer.writerows([first.values(), first.values(), ["JB-X", "Ann"], second.values()])
        writer.writerows(r.values() for r in records[2:])
    result = evaluate(
        "--left", world_files["dcf"], "--right", bad, "--truth", world_files["truth"],
        "--json", tmp_path / "r.json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    record_id = first["record_id"]
    assert (
        f"{bad}, line 3, column record_id: record id '{record_id}' already used on line 2" in output
    )
    assert f"{bad}, line 4: has 2 fields" in output
    assert f"{bad}, line 5, column dob:" in output
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["right_records"] == len(records)  # the repeated id and the short row are excluded
    assert data["inputs"]["right"]["quality"]["excluded_rows"] == 2
    assert data["inputs"]["right"]["quality"]["invalid_dob"] == 1
    assert data["methods"]["classic"]["recall"] >= 0.95  # the truth file is the synth format
    # Reports others read name the row and column but never quote an identifier's value.
    sample = data["inputs"]["right"]["problem_sample"]
    assert any("line 5, column dob: (value withheld)" in p for p in sample)
    assert "2003-02-30" not in json.dumps(data) and "2003-02-30" in output


def test_unknown_options_and_files_fail_clearly(tmp_path: Path) -> None:
    result = evaluate("--left", tmp_path / "absent.csv", "--right", tmp_path / "b.csv")
    assert result.exit_code == 2 and "cannot open extract" in result.output
    result = evaluate("--scenario", "nowhere")
    assert result.exit_code == 2 and "crossover, disconnected, pebt" in result.output
    result = evaluate("--left", tmp_path / "a.csv")
    assert result.exit_code == 2 and "--right" in result.output
