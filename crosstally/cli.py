"""The `crosstally` command line."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

app = typer.Typer(
    help="crosstally: cross-agency tallies without centralizing identifiers.", no_args_is_help=True
)
console = Console()


@app.command()
def demo(
    people: int = typer.Option(20_000, help="synthetic population size"),
    seed: int = typer.Option(7, help="random seed for the synthetic data"),
) -> None:
    """Run the three template questions on synthetic agencies and print released tables."""
    from crosstally.demo import run_demo

    run_demo(people=people, seed=seed, console=console)


@app.command()
def synth(
    out: Path = typer.Option(..., help="directory for the agency CSVs and truth.csv"),
    seed: int = typer.Option(7, help="random seed (same seed, same files)"),
    people: int = typer.Option(100_000, help="synthetic population size"),
) -> None:
    """Write synthetic Connecticut agency extracts with ground truth."""
    from crosstally.synth import generate, write_world

    with console.status(f"generating {people:,} people"):
        world = generate(people=people, seed=seed)
    with console.status(f"writing extracts to {out}"):
        paths = write_world(world, out)
    for name, path in paths.items():
        console.print(f"{name}: {path}")


if __name__ == "__main__":
    app()
