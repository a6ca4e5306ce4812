"""The `crosstally` command line."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import TaskID

app = typer.Typer(
    help="crosstally: cross-agency tallies without centralizing identifiers.", no_args_is_help=True
)
console = Console()

from services.commands import admin, hub, node, query  # noqa: E402  (after the app they join)

app.add_typer(hub.app, name="hub")
app.add_typer(node.app, name="node")
app.add_typer(query.app, name="query")
app.add_typer(admin.app, name="admin")


@app.command()
def demo(
    people: int = typer.Option(5_000, help="synthetic population size"),
    seed: int = typer.Option(7, help="random seed for the synthetic data"),
    keep: Path | None = typer.Option(None, help="keep extracts, stores and logs in this directory"),
) -> None:
    """Start a hub and seven agency nodes on loopback, run the three templates, print tables."""
    from crosstally.demo import run_demo

    run_demo(people=people, seed=seed, console=console, keep=keep)


@app.command()
def synth(
    out: Path = typer.Option(..., help="directory for the agency CSVs and truth.csv"),
    seed: int = typer.Option(7, help="random seed (same seed, same files)"),
    people: int = typer.Option(100_000, help="synthetic population size"),
    errors: str = typer.Option(
        "independent",
        help="error model: independent (each error on its own, ~3% per field) or realistic "
        "(most records clean, careless ones with 2-4 errors; see docs/protocol.md)",
    ),
) -> None:
    """Write synthetic Connecticut agency extracts with ground truth."""
    from crosstally.synth import ERROR_MODELS, generate, write_world

    if errors not in ERROR_MODELS:
        known = ", ".join(ERROR_MODELS)
        raise typer.BadParameter(f"expected one of {known}", param_hint="--errors")
    with console.status(f"generating {people:,} people"):
        world = generate(people=people, seed=seed, error_model=errors)
    with console.status(f"writing extracts to {out}"):
        paths = write_world(world, out)
    for name, path in paths.items():
        console.print(f"{name}: {path}")


@app.command()
def bench(
    records: int = typer.Option(10_000, help="records per party"),
    parties: int = typer.Option(2, help="number of parties (2 or more)"),
    keys: str = typer.Option("standard", help="key profile"),
    overlap: float = typer.Option(0.1, help="share of people present at every party"),
    seed: int = typer.Option(1, help="random seed"),
    workers: int = typer.Option(0, help="worker processes (0: all cores)"),
    curve: str = typer.Option("p256", help="curve engine: p256 (openmined-psi) or x25519"),
    isolated: bool = typer.Option(
        False, help="run every party in its own process and report each one's peak memory"
    ),
    services: bool = typer.Option(
        False,
        help="also run the tally through a hub and one node per party on loopback HTTP "
        "and report the extra cost of the services",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="write the figures as JSON here"),
) -> None:
    """Measure the private tally against its curve-operation bound and openmined-psi."""
    import json

    from rich.progress import Progress

    from crosstally.bench import BenchResult, run_bench
    from crosstally.report import bench_table

    def checkpoint(figures: BenchResult) -> None:
        """Write the figures so far (the bench's tally before its baseline, then all)."""
        if json_out:
            json_out.write_text(json.dumps(figures.to_dict(), indent=2))

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmark", total=6 if services else 4)
        query: list[TaskID] = []

        def step(description: str) -> None:
            if progress.tasks[task].description != "benchmark":
                progress.advance(task)
            progress.update(task, description=description)

        def query_progress(phase: str, done: int, total: int) -> None:
            if not query:
                query.append(progress.add_task("services", total=total))
            progress.update(query[0], description=f"query: {phase}", completed=done, total=total)

        result = run_bench(
            records=records,
            parties=parties,
            keys=keys,
            overlap=overlap,
            seed=seed,
            workers=workers or None,
            curve=curve,
            isolated=isolated,
            services=services,
            step=step,
            query_progress=query_progress,
            checkpoint=checkpoint,
        )
    if json_out:
        checkpoint(result)
        console.print(f"wrote {json_out}")
    else:
        console.print(bench_table(result))


@app.command()
def evaluate(
    left: Path | None = typer.Option(None, help="left agency extract (CSV or Parquet)"),
    right: Path | None = typer.Option(None, help="right agency extract (CSV or Parquet)"),
    truth: Path | None = typer.Option(
        None, help="true pairs: CSV with left_id,right_id (or a synth truth.csv)"
    ),
    map_: Path | None = typer.Option(None, "--map", help="column map (TOML) for both extracts"),
    left_map: Path | None = typer.Option(None, help="column map for the left extract only"),
    right_map: Path | None = typer.Option(None, help="column map for the right extract only"),
    keys: str = typer.Option(
        "auto",
        help="match-key profile of the private protocol (auto: standard, or no_dob when an "
        "extract has no DOB)",
    ),
    json_out: Path | None = typer.Option(None, "--json", help="write the results as JSON"),
    html_out: Path | None = typer.Option(None, "--html", help="write a self-contained HTML report"),
    scenario: str | None = typer.Option(
        None, help="crossover, disconnected or pebt: a synthetic population, both ways, vs truth"
    ),
    people: int = typer.Option(5_000, help="synthetic population size for --scenario"),
    seed: int = typer.Option(7, help="random seed for --scenario"),
) -> None:
    """Compare classic hub linkage with the privacy-preserving protocol on the same records."""
    from crosstally.evaluate.command import run_pair_command, run_scenario_command
    from crosstally.extract import ExtractError
    from protocol.errors import InvalidSpec

    try:
        if scenario is not None:
            if left or right or truth:
                raise typer.BadParameter("--scenario generates its own data; drop --left/--right")
            run_scenario_command(
                console, scenario=scenario, people=people, seed=seed,
                json_out=json_out, html_out=html_out,
            )  # fmt: skip
            return
        if left is None or right is None:
            raise typer.BadParameter("give --left and --right extracts, or --scenario NAME")
        run_pair_command(
            console, left=left, right=right, truth=truth,
            maps=(left_map or map_, right_map or map_), keys=keys,
            json_out=json_out, html_out=html_out,
        )  # fmt: skip
    except (ExtractError, InvalidSpec) as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(2) from exc


if __name__ == "__main__":
    app()
