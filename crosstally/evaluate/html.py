"""The self-contained HTML evaluation report for a governance board (inline CSS and SVG only)."""

from __future__ import annotations

import datetime as dt
from html import escape
from typing import Any

from crosstally.evaluate import svg
from crosstally.evaluate.by_error import RecallRow
from crosstally.evaluate.inputs import AgencyInput, redacted
from crosstally.evaluate.pair import METHODS, PairEvaluation

TITLES = {"classic": "Classic hub (in the clear)", "pet": "Privacy-preserving (PET)"}
SHORT = {"classic": "classic hub", "pet": "PET"}
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#111827;margin:0;
background:#f9fafb;line-height:1.45}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid
#e5e7eb;padding-bottom:4px}h3{font-size:15px;margin:16px 0 6px}
p.meta{color:#4b5563;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0;font-size:14px}
th,td{border-bottom:1px solid #e5e7eb;padding:5px 10px;text-align:right;vertical-align:top}
th:first-child,td:first-child{text-align:left}th{background:#f3f4f6;font-weight:600}
td.text,th.text{text-align:left}
.grid{display:flex;flex-wrap:wrap;gap:16px 28px}.grid figure{margin:0}
figcaption{font-size:13px;color:#374151;margin:0 0 4px;font-weight:600}
.key{display:inline-block;margin-right:14px;font-size:12px;color:#374151}
.key i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.note{font-size:13px;color:#4b5563}.summary{font-size:15px;background:#eff6ff;padding:10px 14px;
border-left:4px solid #1d4ed8}
ul.problems{font-size:12px;font-family:ui-monospace,monospace;color:#374151;max-height:220px;
overflow:auto;background:#f9fafb;padding:8px 8px 8px 24px;margin:4px 0}
"""


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _methods_table(ev: PairEvaluation) -> str:
    head = "".join(f"<th>{escape(TITLES[m])}</th>" for m in METHODS)
    data = ev.to_json()["methods"]
    rows: list[tuple[str, list[str]]] = [
        ("links (record pairs)", [f"{data[m]['links']:,}" for m in METHODS]),
        ("match rate (left records linked)", [_pct(data[m]["match_rate"]) for m in METHODS]),
        ("precision", [_num(data[m]["precision"]) for m in METHODS]),
        ("recall", [_num(data[m]["recall"]) for m in METHODS]),
        ("F1", [_num(data[m]["f1"]) for m in METHODS]),
        ("seconds", [f"{data[m]['seconds']:.1f}" for m in METHODS]),
        ("tokens per record", ["—", f"{data['pet']['tokens_per_record']:.0f}"]),
        ("bytes exchanged between parties", ["—", f"{data['pet']['bytes_exchanged']:,}"]),
    ]
    body = "".join(
        f"<tr><td>{escape(label)}</td>{''.join(f'<td>{v}</td>' for v in values)}</tr>"
        for label, values in rows
    )
    return f"<table><tr><th>measure</th>{head}</tr>{body}</table>"


def _error_recall(ev: PairEvaluation) -> str:
    """Recall by error class and by number of errors, when the truth names the classes."""
    by_error = ev.error_recall()
    if by_error is None:
        return ""
    head = "".join(
        f"<th>{escape(SHORT[m])} found</th><th>{escape(SHORT[m])} recall</th>" for m in METHODS
    )

    def rows(table: list[RecallRow]) -> str:
        return "".join(
            f"<tr><td>{escape(r.label)}</td><td>{r.pairs:,}</td>"
            + "".join(f"<td>{r.found[m]:,}</td><td>{_num(r.recall(m))}</td>" for m in METHODS)
            + "</tr>"
            for r in table
        )

    return (
        "<h2>Recall by error class</h2><p class='note'>A true pair carries every error class "
        "of either of its records; a pair with several classes counts in each.</p>"
        f"<table><tr><th>error class</th><th>true pairs</th>{head}</tr>"
        f"{rows(by_error.classes)}</table>"
        f"<h3>By number of errors on the pair</h3><table><tr><th>errors</th>"
        f"<th>true pairs</th>{head}</tr>{rows(by_error.by_count)}</table>"
    )


def _charts(ev: PairEvaluation) -> str:
    data = ev.to_json()["methods"]
    rate_bars = [
        svg.Bar(SHORT[m], data[m]["match_rate"], _pct(data[m]["match_rate"], 1),
                svg.COLORS[m])
        for m in METHODS
    ]  # fmt: skip
    if ev.truth is not None:
        true_rate = len({a for a, _ in ev.truth.pairs}) / max(len(ev.left.records), 1)
        rate_bars.insert(0, svg.Bar("truth", true_rate, _pct(true_rate, 1), svg.COLORS["truth"]))
    figures = [("Match rate: share of left records linked",
                svg.bars(rate_bars, title="match rates", scale=1.0))]  # fmt: skip
    if ev.truth is not None:
        quality = [
            svg.Bar(f"{SHORT[m]} {name}", data[m][key], _num(data[m][key]),
                    svg.COLORS[m])
            for key, name in (("precision", "precision"), ("recall", "recall"), ("f1", "F1"))
            for m in METHODS
        ]  # fmt: skip
        figures.append(("Precision, recall and F1", svg.bars(quality, title="quality", scale=1.0)))
        errors = []
        for m in METHODS:
            found, hits = data[m]["links"], data[m]["true_links"]
            errors += [
                svg.Bar(f"{SHORT[m]} false links", found - hits,
                        f"{found - hits:,}", svg.FALSE_COLOR),
                svg.Bar(f"{SHORT[m]} missed pairs", len(ev.truth.pairs) - hits,
                        f"{len(ev.truth.pairs) - hits:,}", "#f59e0b"),
            ]  # fmt: skip
        peak = max((b.value for b in errors), default=1) or 1
        figures.append(("Errors: false links and missed true pairs",
                        svg.bars(errors, title="errors", scale=peak * 1.15)))  # fmt: skip
    agreement = ev.concordance()
    true_counts = None
    if ev.truth is not None:
        pairs = ev.truth.pairs
        true_counts = (len(agreement.classic_only & pairs), len(agreement.both & pairs),
                       len(agreement.pet_only & pairs))  # fmt: skip
    counts = agreement.counts()
    figures.append(("Concordance of links", svg.concordance(
        counts["both"], counts["classic_only"], counts["pet_only"], title="concordance",
        true_counts=true_counts)))  # fmt: skip
    for m in METHODS:
        run = ev.method(m)
        figures.append((f"Score distribution: {TITLES[m]} ({len(run.log2_odds):,} scored pairs)",
                        svg.histogram(run.log2_odds, run.true_candidate, title=f"{m} scores",
                                      color=svg.COLORS[m])))  # fmt: skip
    cells = "".join(
        f"<figure><figcaption>{escape(cap)}</figcaption>{chart}</figure>" for cap, chart in figures
    )
    key = (
        svg.legend([("true pair", svg.TRUE_COLOR), ("not a true pair", svg.FALSE_COLOR)])
        if ev.truth is not None
        else ""
    )
    note = (
        "Scores are posterior log2 odds of a match. The classic hub keeps pairs scoring −4 "
        "or more; the PET scores every pair sharing a blinded token (person rows, after each "
        "node groups its own records). Values outside −10…40 are drawn at the edges."
    )
    return f'<div class="grid">{cells}</div><p class="note">{key} {note}</p>'


def _visibility(ev: PairEvaluation) -> str:
    n_left, n_right = len(ev.left.records), len(ev.right.records)
    pet = ev.pet.details
    rows = [
        ("Classic hub (Data Integration Hub)",
         f"every identifier of all {n_left + n_right:,} records in the clear: names, date of "
         "birth, SSN, sex, address; it learns exactly who is in both extracts"),
        ("PET hub",
         "no identifier and no token; only the count it decrypts and the message sizes"),
        ("PET joiner",
         f"{pet['tokens_per_record']:.0f} fully blinded tokens per person row "
         f"({', '.join(f'{k} {v:,}' for k, v in pet['rows_after_deduplication'].items())} rows) "
         "and which tokens are equal: agreement patterns of candidate pairs, never a value"),
        ("Each agency node",
         "its own records, and the size of the other agency's row set it re-blinds"),
    ]  # fmt: skip
    body = "".join(
        f"<tr><td>{escape(a)}</td><td class='text'>{escape(b)}</td></tr>" for a, b in rows
    )
    return f"<table><tr><th>party</th><th class='text'>what it saw</th></tr>{body}</table>"


def _quality(side: AgencyInput) -> str:
    profile = side.profile
    miss = "".join(
        f"<tr><td>{escape(field)}</td><td>{_pct(rate, 1)}</td></tr>"
        for field, rate in profile.missing.items()
    )
    figures = (
        f"<tr><td>records linked</td><td>{profile.records:,}</td></tr>"
        f"<tr><td>rows excluded (unreadable, no id, duplicate id)</td>"
        f"<td>{profile.excluded_rows:,}</td></tr>"
        f"<tr><td>invalid dates of birth (kept)</td><td>{profile.invalid_dob:,}</td></tr>"
        f"<tr><td>invalid SSNs (kept, SSN not used)</td><td>{profile.invalid_ssn:,}</td></tr>"
        f"<tr><td>person ids on several records</td><td>{profile.duplicate_person_ids:,}</td></tr>"
    )
    problems = side.extract.problems
    listed = "".join(f"<li>{escape(redacted(p))}</li>" for p in problems[:50])
    more = f"<p class='note'>… and {len(problems) - 50:,} more.</p>" if len(problems) > 50 else ""
    plist = f"<ul class='problems'>{listed}</ul>{more}" if problems else "<p>No row problems.</p>"
    return (
        f"<h3>{escape(side.side)}: {escape(side.source)}</h3><div class='grid'>"
        f"<table><tr><th>field</th><th>missing</th></tr>{miss}</table>"
        f"<table><tr><th>figure</th><th>count</th></tr>{figures}</table></div>"
        f"<p class='note'>{len(problems):,} row problem(s):</p>{plist}"
    )


def _yes_no(value: object) -> str:
    return "—" if value is None else ("yes" if value else "no")


def _discordant(data: dict[str, Any]) -> str:
    out = []
    for key, title in (("classic_only", "Linked by the classic hub only"),
                       ("pet_only", "Linked by the PET only")):  # fmt: skip
        rows = data["discordant_sample"][key]
        if not rows:
            out.append(f"<h3>{title}</h3><p>None.</p>")
            continue
        body = "".join(
            f"<tr><td>{escape(r['left_id'])}</td><td class='text'>{escape(r['right_id'])}</td>"
            f"<td class='text'>{_yes_no(r['true_pair'])}</td></tr>"
            for r in rows
        )
        out.append(
            f"<h3>{title} (first {len(rows)})</h3><table><tr><th>left record</th>"
            f"<th class='text'>right record</th><th class='text'>true pair</th></tr>{body}</table>"
        )
    return "".join(out)


def render_html(ev: PairEvaluation) -> str:
    """The whole report as one HTML document."""
    data = ev.to_json()
    counts = data["concordance"]
    classic, pet = data["methods"]["classic"], data["methods"]["pet"]
    summary = (
        f"Of {data['left_records']:,} left records, the classic hub linked "
        f"{_pct(classic['match_rate'], 1)} and the privacy-preserving method "
        f"{_pct(pet['match_rate'], 1)}. The two agree on {counts['both']:,} links; "
        f"{counts['classic_only']:,} are classic only and {counts['pet_only']:,} PET only."
    )
    if ev.truth is not None:
        summary += (
            f" Against {len(ev.truth.pairs):,} true pairs: classic F1 {_num(classic['f1'])}, "
            f"PET F1 {_num(pet['f1'])}."
        )
    rules = ", ".join(f"{k} {v:,}" for k, v in classic["rules"].items()) or "none"
    truth_line = (
        f"ground truth {escape(ev.truth.source)} ({len(ev.truth.pairs):,} true pairs)"
        if ev.truth is not None
        else "no ground truth given: precision, recall and F1 are not available"
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>crosstally evaluation: classic hub vs privacy-preserving linkage</title>
<style>{STYLE}</style></head><body><main>
<h1>Record linkage evaluation: classic hub vs privacy-preserving</h1>
<p class="meta">{escape(ev.left.source)} ({data["left_records"]:,} records) ×
{escape(ev.right.source)} ({data["right_records"]:,} records) · {truth_line} ·
key profile “{escape(ev.keys)}” · generated {dt.date.today().isoformat()}</p>
<p class="summary">{escape(summary)}</p>
<h2>Results</h2>{_methods_table(ev)}
<p class="note">Classic links by rule: {escape(rules)}. Links are record pairs: when an
agency holds several records of one person, every pair of their records counts.</p>
{_error_recall(ev)}
<h2>Charts</h2>{_charts(ev)}
<h2>What each party saw</h2>{_visibility(ev)}
<p class="note">The classic hub needs every identifier in the clear to link. The PET
computes the same kind of linkage on blinded tokens; no party other than an agency
ever holds an identifier.</p>
<h2>Data quality of the inputs</h2>{_quality(ev.left)}{_quality(ev.right)}
<h2>Discordant links (record ids only)</h2>{_discordant(data)}
</main></body></html>
"""
