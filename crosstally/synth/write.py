"""Write a synthetic world as agency CSV extracts plus the `truth.csv` linking records to people."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from crosstally.synth.agencies import AgencyExtract
from crosstally.synth.errors import error_classes
from crosstally.synth.world import SyntheticWorld, stream

TRUTH_FILE = "truth.csv"
TRUTH_COLUMNS = ("agency", "record_id", "person_id", "errors")
_MALFORMED_STREAM = 9


def write_world(
    world: SyntheticWorld, out_dir: Path, *, malformed_rows: int = 0
) -> dict[str, Path]:
    """Write `<agency>.csv` for each agency and `truth.csv`; return their paths by agency code.

    The truth file maps every record to its true global person id (`P0000123`) and lists the
    error classes it carries (`ERROR_CLASSES` names, `;`-separated, empty when clean); the key
    `"truth"` in the result is its path. `malformed_rows` > 0 adds that many broken lines to
    each agency file (too few or too many fields, no record id); they are not in the truth.
    """
    if malformed_rows < 0:
        raise ValueError(f"malformed_rows must be >= 0, got {malformed_rows}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for i, (code, table) in enumerate(world.tables.items()):
        path = out_dir / f"{code}.csv"
        rows: Iterable[Sequence[str]] = table.rows()
        if malformed_rows:
            rng = stream(world.seed, _MALFORMED_STREAM, i)
            rows = _with_malformed(rng, table, rows, malformed_rows)
        _write_csv(path, table.columns, rows)
        paths[code] = path
    paths["truth"] = out_dir / TRUTH_FILE
    _write_csv(paths["truth"], TRUTH_COLUMNS, _truth_rows(world))
    return paths


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _truth_rows(world: SyntheticWorld) -> Iterator[tuple[str, str, str, str]]:
    width = world.people.id_width
    for code, table in world.tables.items():
        ids = [f"P{p:0{width}d}" for p in table.person_index.tolist()]
        errors = [";".join(error_classes(flags)) for flags in table.errors.tolist()]
        yield from zip([code] * len(table), table.record_ids(), ids, errors, strict=True)


def _with_malformed(
    rng: np.random.Generator,
    table: AgencyExtract,
    rows: Iterable[Sequence[str]],
    count: int,
) -> Iterator[Sequence[str]]:
    """`rows` with `count` broken lines inserted at random places."""
    width = len(table.columns)
    at = np.sort(rng.integers(0, len(table) + 1, count)).tolist()
    prefix = table.agency.record_prefix
    broken: list[Sequence[str]] = []
    for k in range(count):
        record_id = f"{prefix}-BAD{k + 1:04d}"
        kind = k % 3
        if kind == 0:
            broken.append([record_id, "", "TRUNCATED"])
        elif kind == 1:
            broken.append([record_id, *([""] * (width - 1)), "EXTRA FIELD"])
        else:
            broken.append(["", *([""] * (width - 1))])
    position = 0
    for index, row in enumerate(rows):
        while position < count and at[position] == index:
            yield broken[position]
            position += 1
        yield row
    yield from broken[position:]
