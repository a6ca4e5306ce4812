"""Shared fixtures: one small synthetic world written as agency CSVs with its truth file."""

from __future__ import annotations

from pathlib import Path

import pytest

from crosstally.synth import generate, write_world

PEOPLE = 2_500
SEED = 41


@pytest.fixture(scope="session")
def world_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Agency CSVs and truth.csv for a small population (DCF ~170 and JB-CSSD ~80 records)."""
    return write_world(generate(people=PEOPLE, seed=SEED), tmp_path_factory.mktemp("world"))
