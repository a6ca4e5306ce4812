"""`crosstally evaluate`: read inputs, run both methods with a progress display, write reports."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from crosstally.extract import ColumnMap, load_column_map

# read left, read right, four classic steps, PET, reports
PAIR_STEPS = 8


@contextmanager
def progress_steps(console: Console, total: int) -> Iterator[Callable[[str], None]]:
    """A progress bar whose callback names the step starting now."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=total)
        started = False

        def step(description: str) -> None:
            nonlocal started
            if started:
                progress.advance(task)
            started = True
            progress.update(task, description=description)

        yield step
        progress.update(task, completed=total)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _map(path: Path | None) -> ColumnMap | None:
    return load_column_map(path) if path is not None else None


def run_pair_command(
    console: Console,
    *,
    left: Path,
    right: Path,
    truth: Path | None,
    maps: tuple[Path | None, Path | None],
    keys: str,
    json_out: Path | None,
    html_out: Path | None,
) -> None:
    """Evaluate two extract files; ExtractError propagates for the CLI to report."""
    from crosstally.evaluate.console import print_pair, print_problems
    from crosstally.evaluate.html import render_html
    from crosstally.evaluate.inputs import load_input
    from crosstally.evaluate.pair import evaluate_pair
    from protocol.linkage.keys import load_profile

    if keys != "auto":
        load_profile(keys)  # an unknown profile fails before any work
    left_map, right_map = _map(maps[0]), _map(maps[1])
    with progress_steps(console, PAIR_STEPS) as step:
        step(f"reading {left}")
        left_input = load_input(left, left_map, side="left")
        step(f"reading {right}")
        right_input = load_input(right, right_map, side="right")
        evaluation = evaluate_pair(left_input, right_input, truth_path=truth, keys=keys, step=step)
        step("writing reports")
        if json_out is not None:
            write_json(json_out, evaluation.to_json())
        if html_out is not None:
            write_text(html_out, render_html(evaluation))
    print_problems(console, left_input)
    print_problems(console, right_input)
    print_pair(console, evaluation)
    for label, path in (("JSON", json_out), ("HTML", html_out)):
        if path is not None:
            console.print(f"{label} report: {path}")


def run_scenario_command(
    console: Console,
    *,
    scenario: str,
    people: int,
    seed: int,
    json_out: Path | None,
    html_out: Path | None,
) -> None:
    """Generate a population and answer one template question both ways, against the truth."""
    from crosstally.evaluate.scenario import SCENARIOS, STEPS, print_scenario, run_scenario
    from crosstally.evaluate.scenario_html import render_scenario_html

    if scenario not in SCENARIOS:
        raise typer.BadParameter(
            f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}",
            param_hint="--scenario",
        )
    with progress_steps(console, STEPS) as step:
        result = run_scenario(scenario, people=people, seed=seed, step=step)
        step("writing reports")
        if json_out is not None:
            write_json(json_out, result.to_json())
        if html_out is not None:
            write_text(html_out, render_scenario_html(result))
    print_scenario(console, result)
    for label, path in (("JSON", json_out), ("HTML", html_out)):
        if path is not None:
            console.print(f"{label} report: {path}")
