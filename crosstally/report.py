"""Terminal rendering of released tables (rich)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from protocol.disclosure import ReleasedTable

if TYPE_CHECKING:
    from crosstally.bench import BenchResult


def released_table(title: str, table: ReleasedTable) -> Table:
    """A rich table of released cells; suppressed cells show as '*' with their reason."""
    out = Table(title=title, title_justify="left")
    for dim in table.dimensions:
        out.add_column(dim)
    out.add_column("count", justify="right")
    for cell in table.cells:  # zeros too: the notes say how a count of 0 is shown
        shown = str(cell.count) if cell.count is not None else f"* ({cell.status})"
        out.add_row(*cell.key, shown)
    total = table.total
    out.add_section()
    out.add_row(*(["total"] + [""] * (len(table.dimensions) - 1)),
                str(total.count) if total.count is not None else "*")  # fmt: skip
    return out


def print_released(console: Console, title: str, table: ReleasedTable) -> None:
    console.print(released_table(title, table))
    for note in table.notes:
        console.print(f"  [dim]{note}[/dim]")


def bench_table(result: BenchResult) -> Table:
    """The benchmark's figures as a two-column table."""
    title = (
        f"crosstally bench: {result.records:,} records x {result.parties} parties, {result.curve}"
    )
    out = Table(title=title)
    out.add_column("measure")
    out.add_column("value", justify="right")
    rows = [
        ("tokens per record", f"{result.tokens_per_record:.0f}"),
        ("tally, end to end", f"{result.tally_seconds:.1f} s on {result.workers} cores"),
        ("curve operations", f"{result.ec_operations:,}"),
        (
            "raw rate (one core, before / after)",
            " / ".join(
                f"hash {h:.0f} us, blind {b:.0f} us"
                for h, b in (result.raw_rates_us["before"], result.raw_rates_us["after"])
            ),
        ),
        ("curve bound", f"{result.ec_bound_seconds:.1f} s"),
        ("overhead ratio", f"{result.overhead_ratio:.2f}"),
        ("Paillier", f"{result.paillier_seconds:.1f} s ({result.paillier_share:.1%} of the tally)"),
        (
            "openmined-psi cardinality, one key",
            "not run" if result.psi_ca_seconds is None else f"{result.psi_ca_seconds:.1f} s",
        ),
        ("bytes between parties", f"{result.bytes_exchanged / 1e6:,.1f} MB"),
        ("peak resident memory", f"{result.peak_rss_mb:,.0f} MB"),
    ]
    for party, peak in (result.party_peak_rss_mb or {}).items():
        rows.append((f"peak memory of party {party}", f"{peak:,.0f} MB"))
    if result.services_seconds is not None and result.services_overhead is not None:
        rows += [
            ("tally through hub and nodes (HTTP)", f"{result.services_seconds:.1f} s"),
            ("services overhead", f"{result.services_overhead:+.1%} vs in-process"),
            ("bytes over HTTP", f"{(result.services_http_bytes or 0) / 1e6:,.1f} MB"),
            ("sealed parts relayed", f"{result.services_parts or 0:,}"),
        ]
        for node, peak in (result.services_node_peak_rss_mb or {}).items():
            rows.append((f"peak memory of node {node}", f"{peak:,.0f} MB"))
        tally_cpu, services_cpu = result.tally_cpu_seconds, result.services_cpu_seconds
        if tally_cpu is not None and services_cpu is not None:
            rows.append(
                ("CPU time, in process / services", f"{tally_cpu:.1f} s / {services_cpu:.1f} s")
            )
    for name, value in rows:
        out.add_row(name, value)
    return out
