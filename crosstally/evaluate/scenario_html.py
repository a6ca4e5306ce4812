"""The self-contained HTML report of a scenario: truth, classic and PET tables side by side."""

from __future__ import annotations

from html import escape

from crosstally.evaluate import svg
from crosstally.evaluate.html import STYLE
from crosstally.evaluate.scenario import ScenarioResult

NAMES = {"truth": "truth (true persons)", "classic": "classic hub", "pet": "PET"}


def _cells(result: ScenarioResult) -> str:
    data = result.to_json()
    head = "".join(f"<th class='text'>{escape(d)}</th>" for d in result.dimensions)
    body = []
    for row in data["cells"]:
        status = row["pet_status"]
        released = (
            "—" if status is None
            else str(row["pet_released"]) if row["pet_released"] is not None
            else f"suppressed ({status})"
        )  # fmt: skip
        keys = "".join(f"<td class='text'>{escape(k)}</td>" for k in row["key"])
        body.append(
            f"<tr>{keys}<td>{row['truth']:,}</td><td>{row['classic']:,}</td>"
            f"<td>{row['pet']:,}</td><td>{escape(released)}</td></tr>"
        )
    totals = data["totals"]
    total = result.released.total.count
    pad = "".join("<td></td>" for _ in result.dimensions[1:])
    body.append(
        f"<tr><th class='text'>total</th>{pad}<th>{totals['truth']:,}</th>"
        f"<th>{totals['classic']:,}</th><th>{totals['pet']:,}</th>"
        f"<th>{'suppressed' if total is None else f'{total:,}'}</th></tr>"
    )
    return (
        f"<table><tr>{head}<th>truth</th><th>classic hub</th><th>PET</th>"
        f"<th>PET released</th></tr>{''.join(body)}</table>"
    )


def _figures(result: ScenarioResult) -> str:
    truth = result.total("truth")
    totals = [
        svg.Bar(NAMES[m], result.total(m), f"{result.total(m):,}", svg.COLORS[m])
        for m in ("truth", "classic", "pet")
    ]
    errors = [
        svg.Bar(NAMES[m], result.abs_error(m), f"{result.abs_error(m):,}", svg.COLORS[m])
        for m in ("classic", "pet")
    ]
    members = [
        svg.Bar(f"{NAMES[m]} {what}", value, f"{value:.4f}", svg.COLORS[m])
        for m in ("classic", "pet")
        for what, value in (
            ("precision", result.membership[m].precision),
            ("recall", result.membership[m].recall),
        )
    ]
    peak = max(1, *(b.value for b in errors))
    figures = [
        ("Population size", svg.bars(totals, title="totals", scale=max(truth, 1) * 1.25)),
        ("Cell errors: Σ |count − truth|", svg.bars(errors, title="errors", scale=peak * 1.25)),
        ("Population membership (per person)", svg.bars(members, title="members", scale=1.0)),
    ]
    return (
        '<div class="grid">'
        + "".join(f"<figure><figcaption>{escape(c)}</figcaption>{s}</figure>" for c, s in figures)
        + "</div>"
    )


def render_scenario_html(result: ScenarioResult) -> str:
    data = result.to_json()
    cohorts = ", ".join(
        f"{label} ({result.spec.cohorts[label].node}: {n:,} records)"
        for label, n in result.cohort_records.items()
    )
    notes = "".join(f"<li>{escape(n)}</li>" for n in result.released.notes) or "<li>none</li>"
    seconds = data["seconds"]
    total = result.released.total.count
    released_total = "suppressed" if total is None else f"{total:,}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>crosstally scenario evaluation: {escape(result.spec.name)}</title>
<style>{STYLE}</style></head><body><main>
<h1>Scenario: {escape(result.spec.name)}</h1>
<p class="meta">{result.people:,} synthetic people, seed {result.seed}; agreement
{escape(result.spec.agreement)}; population “{escape(result.spec.population)}”; cohorts:
{escape(cohorts)}</p>
<p class="summary">Truth {result.total("truth"):,}; classic hub {result.total("classic"):,};
PET {result.total("pet"):,} (released total
{released_total}).
The generator's facts give {result.facts_population:,} (records with an invalid date of
birth cannot satisfy an age condition, so this can differ from the linked truth).</p>
<h2>Tables before disclosure control, and the released PET table</h2>{_cells(result)}
<p class="note">Disclosure control (min cell {result.spec.min_cell}):</p>
<ul class="note">{notes}</ul>
<h2>Charts</h2>{_figures(result)}
<h2>Cost and what each party saw</h2>
<table><tr><th>method</th><th class="text">saw</th><th>seconds</th></tr>
<tr><td>classic hub</td><td class="text">every identifier of every cohort record</td>
<td>{seconds["classic"]:.1f}</td></tr>
<tr><td>PET</td><td class="text">hub: the histogram only; joiner: blinded tokens
({result.spec.linkage.keys.slots} per record) and their equality;
{result.pet_messages} messages, {result.pet_bytes:,} bytes</td><td>{seconds["pet"]:.1f}</td></tr>
</table>
</main></body></html>
"""
