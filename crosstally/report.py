"""Terminal rendering of released tables (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from protocol.disclosure import ReleasedTable


def released_table(title: str, table: ReleasedTable) -> Table:
    """A rich table of released cells; suppressed cells show as '*' with their reason."""
    out = Table(title=title, title_justify="left")
    for dim in table.dimensions:
        out.add_column(dim)
    out.add_column("count", justify="right")
    for cell in table.cells:
        if cell.count == 0 and cell.status == "released":
            continue
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
