"""Reading an agency extract (CSV, Parquet or SQL) into canonical person records.

A column map (TOML) names the source column of each canonical field; every other
source column is carried as an attribute. Bad rows are reported with the file, line
and column and what to do, counted, and never silently dropped: a row that cannot be
read at all (wrong number of fields, no record id, a duplicate id) is excluded and
reported; a row with an invalid DOB or SSN is kept and linked on what it has.
"""

from __future__ import annotations

import csv
import tomllib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.linkage.normalize import normalize_person
from protocol.records import PersonRecord

CANONICAL = (
    "record_id", "person_id", "first_name", "middle_name", "last_name", "suffix", "dob", "sex",
    "ssn", "zip", "town", "address", "race", "ethnicity",
)  # fmt: skip
IDENTITY = ("first_name", "last_name", "dob", "ssn")


class ExtractError(Exception):
    """The extract or its column map cannot be used at all (not a per-row problem)."""


@dataclass(frozen=True)
class ColumnMap:
    """Canonical field -> source column; `attributes` None means every other column."""

    columns: dict[str, str] = field(default_factory=dict)
    attributes: tuple[str, ...] | None = None

    def source(self, canonical: str) -> str:
        return self.columns.get(canonical, canonical)


def load_column_map(path: Path) -> ColumnMap:
    """Read a TOML column map: `[columns] record_id = "CLIENT_ID"` and optional `[attributes]`."""
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ExtractError(f"column map {path}: {exc}") from exc
    columns = data.get("columns", {})
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise ExtractError(
            f"column map {path}: unknown canonical field(s) {', '.join(unknown)}; "
            f"canonical fields are {', '.join(CANONICAL)}"
        )
    include = data.get("attributes", {}).get("include")
    return ColumnMap(
        {str(k): str(v) for k, v in columns.items()}, tuple(include) if include else None
    )


@dataclass(frozen=True)
class RowProblem:
    """One problem in one row: where it is, what is wrong, whether the row was kept."""

    source: str
    line: int
    column: str | None
    message: str
    kept: bool
    field: str | None = None

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" + (
            f", column {self.column}" if self.column else ""
        )
        return f"{where}: {self.message}" + ("" if self.kept else " (row excluded)")


@dataclass
class Extract:
    """Records read from one source, the columns it had, and every problem found."""

    source: str
    records: list[PersonRecord]
    columns: list[str]
    problems: list[RowProblem]
    rows_read: int

    @property
    def excluded(self) -> int:
        return sum(1 for p in self.problems if not p.kept)


def _records(
    source: str, header: list[str], rows: Iterable[tuple[int, list[str]]], column_map: ColumnMap
) -> Extract:
    id_column = column_map.source("record_id")
    if id_column not in header:
        raise ExtractError(
            f"{source}: no record id column {id_column!r}; the file has {', '.join(header)}. "
            'Add it, or map it in the column map: [columns] record_id = "YOUR_ID_COLUMN"'
        )
    mapped = {c: column_map.source(c) for c in CANONICAL if column_map.source(c) in header}
    sources = set(mapped.values())
    extra = [c for c in header if c not in sources]
    if column_map.attributes is not None:
        missing = [c for c in column_map.attributes if c not in header]
        if missing:
            raise ExtractError(
                f"{source}: attribute column(s) {', '.join(missing)} are not in the file"
            )
        extra = list(column_map.attributes)
    index = {name: i for i, name in enumerate(header)}
    records: list[PersonRecord] = []
    problems: list[RowProblem] = []
    seen: dict[str, int] = {}
    count = 0
    for line, values in rows:
        count += 1
        if len(values) != len(header):
            message = f"has {len(values)} fields, the header has {len(header)}"
            problems.append(
                RowProblem(
                    source, line, None, f"{message}: check quoting and delimiters", kept=False
                )
            )
            continue
        record_id = values[index[id_column]].strip()
        if not record_id:
            problems.append(RowProblem(source, line, id_column, "record id is empty", kept=False))
            continue
        if record_id in seen:
            message = f"record id {record_id!r} already used on line {seen[record_id]}"
            problems.append(
                RowProblem(source, line, id_column, f"{message}; ids must be unique", kept=False)
            )
            continue
        seen[record_id] = line
        fields = {
            c: (values[index[s]].strip() or None) for c, s in mapped.items() if c != "record_id"
        }
        attrs = {c: values[index[c]].strip() for c in extra if values[index[c]].strip()}
        record = PersonRecord(record_id=record_id, **fields, attributes=attrs)
        for issue in normalize_person(record).issues:
            name, _, message = issue.partition(": ")
            problems.append(
                RowProblem(source, line, column_map.source(name), message, kept=True, field=name)
            )
        records.append(record)
    return Extract(source, records, [*mapped, *extra], problems, count)


def read_csv(path: Path, column_map: ColumnMap | None = None) -> Extract:
    """A CSV extract with a header row."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ExtractError(f"cannot open extract {path}: {exc.strerror}") from exc
    with handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration as exc:
            raise ExtractError(f"{path}: the file is empty; expected a header row") from exc
        except csv.Error as exc:
            raise ExtractError(f"{path}: header is not valid CSV: {exc}") from exc

        def rows() -> Iterator[tuple[int, list[str]]]:
            while True:
                try:
                    values = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:
                    yield reader.line_num, [f"<unreadable: {exc}>"]
                    continue
                if values:
                    yield reader.line_num, values

        return _records(str(path), header, rows(), column_map or ColumnMap())


def read_parquet(path: Path, column_map: ColumnMap | None = None) -> Extract:
    """A Parquet extract; every column is read as text."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ExtractError(f"cannot read Parquet extract {path}: {exc}") from exc
    header = list(table.column_names)
    columns = [[("" if v is None else str(v)) for v in table.column(c).to_pylist()] for c in header]
    rows = ((i + 1, [col[i] for col in columns]) for i in range(table.num_rows))
    return _records(str(path), header, rows, column_map or ColumnMap())


def read_sql(url: str, query: str, column_map: ColumnMap | None = None) -> Extract:
    """The rows of a SQL query through SQLAlchemy (the node's own database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            result = conn.execute(text(query))
            header = list(result.keys())
            data = [["" if v is None else str(v) for v in row] for row in result]
    except SQLAlchemyError as exc:
        raise ExtractError(f"SQL extract failed: {exc.__class__.__name__}: {exc.args[0]}") from exc
    finally:
        if "engine" in locals():
            engine.dispose()
    return _records("sql query", header, enumerate(data, start=1), column_map or ColumnMap())


def read_extract(
    source: str | Path, column_map: ColumnMap | None = None, *, query: str | None = None
) -> Extract:
    """CSV or Parquet by file suffix, or SQL when `query` is given (source is then a URL)."""
    if query is not None:
        return read_sql(str(source), query, column_map)
    path = Path(source)
    if path.suffix.lower() in (".parquet", ".pq"):
        return read_parquet(path, column_map)
    return read_csv(path, column_map)


@dataclass(frozen=True)
class QualityProfile:
    """Data-quality figures an evaluator or data steward reads before trusting a link."""

    records: int
    excluded_rows: int
    missing: dict[str, float]
    invalid_dob: int
    invalid_ssn: int
    duplicate_person_ids: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records, "excluded_rows": self.excluded_rows,
            "missing": self.missing, "invalid_dob": self.invalid_dob,
            "invalid_ssn": self.invalid_ssn, "duplicate_person_ids": self.duplicate_person_ids,
        }  # fmt: skip


def quality_profile(extract: Extract) -> QualityProfile:
    n = max(len(extract.records), 1)
    missing = {
        f: sum(1 for r in extract.records if r.value(f) is None) / n
        for f in ("first_name", "last_name", "dob", "sex", "ssn", "zip")
    }
    kept = [p for p in extract.problems if p.kept]
    pids = Counter(r.person_id for r in extract.records if r.person_id)
    return QualityProfile(
        records=len(extract.records),
        excluded_rows=extract.excluded,
        missing=missing,
        invalid_dob=sum(1 for p in kept if p.field == "dob"),
        invalid_ssn=sum(1 for p in kept if p.field == "ssn"),
        duplicate_person_ids=sum(1 for c in pids.values() if c > 1),
    )
