"""Terminal rendering of evaluation results (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from crosstally.evaluate.inputs import AgencyInput
from crosstally.evaluate.pair import METHODS, PairEvaluation

PROBLEMS_SHOWN = 10


def _fmt(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def print_problems(console: Console, side: AgencyInput) -> None:
    """Row problems with file, line and column; the first few, then how many more."""
    problems = side.extract.problems
    if not problems:
        return
    excluded = sum(1 for p in problems if not p.kept)
    console.print(
        f"[yellow]{side.source}: {len(problems):,} row problem(s), {excluded:,} row(s) "
        "excluded; rows with invalid values are kept and linked on what they have[/yellow]"
    )
    for problem in problems[:PROBLEMS_SHOWN]:
        console.print(f"  {problem}", markup=False, highlight=False)
    if len(problems) > PROBLEMS_SHOWN:
        console.print(f"  … {len(problems) - PROBLEMS_SHOWN:,} more (all in the HTML/JSON report)")


def print_pair(console: Console, ev: PairEvaluation) -> None:
    data = ev.to_json()
    table = Table(
        title=f"{ev.left.source} ({data['left_records']:,}) × "
        f"{ev.right.source} ({data['right_records']:,})",
        title_justify="left",
    )
    table.add_column("method")
    for column in ("links", "match rate", "precision", "recall", "F1", "seconds", "bytes"):
        table.add_column(column, justify="right")
    for m in METHODS:
        row = data["methods"][m]
        table.add_row(
            m, f"{row['links']:,}", f"{100 * row['match_rate']:.2f}%", _fmt(row["precision"]),
            _fmt(row["recall"]), _fmt(row["f1"]), f"{row['seconds']:.1f}",
            f"{row['bytes_exchanged']:,}" if "bytes_exchanged" in row else "—",
        )  # fmt: skip
    console.print(table)
    counts = data["concordance"]
    console.print(
        f"concordance: both {counts['both']:,}, classic only {counts['classic_only']:,}, "
        f"PET only {counts['pet_only']:,}; PET used "
        f"{data['methods']['pet']['tokens_per_record']:.0f} tokens per record"
    )
    if ev.truth is None:
        console.print("[dim]no --truth: precision, recall and F1 are not available[/dim]")
    elif ev.truth.unknown:
        console.print(
            f"[yellow]{ev.truth.source}: {ev.truth.unknown:,} true pair(s) name records that "
            "are not in the inputs (excluded rows?) and were left out[/yellow]"
        )
