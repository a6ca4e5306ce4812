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
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.linkage.normalize import normalize_person
from protocol.records import CANONICAL_FIELDS, PersonRecord

CANONICAL = CANONICAL_FIELDS
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
    include = data.get("attributes", {}).get("include")
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        raise ExtractError(
            f'column map {path}: [columns] must map fields to column names, e.g. dob = "BIRTH_DT"'
        )
    if include is not None and (
        not isinstance(include, list) or not all(isinstance(c, str) for c in include)
    ):
        raise ExtractError(
            f'column map {path}: [attributes] include must be a list, e.g. include = ["snap"]'
        )
    unknown = sorted(set(columns) - set(CANONICAL))
    if unknown:
        raise ExtractError(
            f"column map {path}: unknown canonical field(s) {', '.join(unknown)}; "
            f"canonical fields are {', '.join(CANONICAL)}"
        )
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


# Bytes that are not valid UTF-8 are read as this character, and the row is flagged.
_REPLACED = "\ufffd"
Row = tuple[int, list[str] | str]  # (line, values) or (line, why the row could not be read)


def _check_header(source: str, header: list[str], column_map: ColumnMap) -> None:
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise ExtractError(
            f"{source}: column(s) {', '.join(map(repr, repeated))} appear more than once in the "
            "header; rename them so each column has one meaning"
        )
    absent = [f"{c} = {s!r}" for c, s in column_map.columns.items() if s not in header]
    if absent:
        raise ExtractError(
            f"{source}: the column map names column(s) the file does not have "
            f"({', '.join(absent)}); the file has {', '.join(header)}"
        )


def _records(source: str, header: list[str], rows: Iterable[Row], column_map: ColumnMap) -> Extract:
    _check_header(source, header, column_map)
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
        if isinstance(values, str):
            problems.append(RowProblem(source, line, None, values, kept=False))
            continue
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
        damaged = [c for c, v in zip(header, values, strict=True) if _REPLACED in v]
        if damaged:
            problems.append(
                RowProblem(source, line, damaged[0], "holds bytes that are not UTF-8 (replaced); "
                           "re-export the extract as UTF-8", kept=True)
            )  # fmt: skip
        for issue in normalize_person(record).issues:
            name, _, message = issue.partition(": ")
            problems.append(
                RowProblem(source, line, column_map.source(name), message, kept=True, field=name)
            )
        records.append(record)
    return Extract(source, records, [*mapped, *extra], problems, count)


class _Lines:
    """A file's physical lines for the csv module, counting them, remembering those of the
    current row, and taking some back: after a stray quote swallowed the lines that followed
    it, they are read again on their own."""

    def __init__(self, handle: Iterable[str]) -> None:
        self._handle = iter(handle)
        self._again: deque[str] = deque()
        self.count = 0
        self.taken: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        text = self._again.popleft() if self._again else next(self._handle)
        self.count += 1
        self.taken.append(text)
        return text

    def take_back(self, lines: list[str]) -> None:
        self._again.extendleft(reversed(lines))
        self.count -= len(lines)


_OPEN_QUOTE = (
    'a field opens with a quote (") that no quote closes on this line: check quoting; '
    "the lines after it are read on their own"
)


def _strictly_csv(text: str) -> bool:
    try:
        for _ in csv.reader([text], strict=True):
            pass
    except csv.Error:
        return False
    return True


def _runs_on(values: list[str], taken: list[str], width: int) -> bool:
    """A line break inside a field is a legitimately quoted multi-line field, or a stray
    quote that ran on to the next quote (or to the end of the file): only the first is a
    valid CSV row with the header's number of fields."""
    if len(taken) == 1 and not (values and values[-1].endswith(("\n", "\r"))):
        return False
    return len(values) != width or not _strictly_csv("".join(taken))


def _csv_rows(lines: _Lines, width: int) -> Iterator[Row]:
    """Rows with the line each starts on. A quoted field may hold line breaks, but a row
    that spans lines must be valid CSV with `width` fields; otherwise its first line is
    reported and excluded and the lines it swallowed are read again as rows of their own."""
    reader = csv.reader(lines)
    while True:
        start, lines.taken = lines.count + 1, []
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            swallowed = lines.taken[1:]
            yield start, _OPEN_QUOTE if swallowed else f"is not valid CSV ({exc}): check quoting"
            lines.take_back(swallowed)
            reader = csv.reader(lines)
            continue
        if _runs_on(values, lines.taken, width):
            yield start, _OPEN_QUOTE
            lines.take_back(lines.taken[1:])
            reader = csv.reader(lines)
            continue
        if values:
            yield start, values


def read_csv(path: Path, column_map: ColumnMap | None = None) -> Extract:
    """A CSV extract with a header row."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig", errors="replace")
    except OSError as exc:
        raise ExtractError(f"cannot open extract {path}: {exc.strerror}") from exc
    with handle:
        lines = _Lines(handle)
        try:
            header = [h.strip() for h in next(csv.reader(lines))]
        except StopIteration as exc:
            raise ExtractError(f"{path}: the file is empty; expected a header row") from exc
        except csv.Error as exc:
            raise ExtractError(f"{path}: header is not valid CSV: {exc}") from exc
        rows = _csv_rows(lines, len(header))
        return _records(str(path), header, rows, column_map or ColumnMap())


def read_parquet(path: Path, column_map: ColumnMap | None = None) -> Extract:
    """A Parquet extract; every column is read as text."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise ExtractError(f"cannot read Parquet extract {path}: {exc}") from exc
    header = list(table.column_names)
    ssn = (column_map or ColumnMap()).source("ssn")
    columns = [[_text(v, ssn=c == ssn) for v in table.column(c).to_pylist()] for c in header]
    rows: Iterator[Row] = ((i + 1, [col[i] for col in columns]) for i in range(table.num_rows))
    return _records(str(path), header, rows, column_map or ColumnMap())


def _text(value: object, *, ssn: bool = False) -> str:
    """A typed cell as extract text: whole floats without ".0", integer SSNs zero-padded."""
    if value is None:
        return ""
    # A numeric SSN column has lost its leading zeros; a ZIP column its trailing ".0".
    if ssn and isinstance(value, int) and not isinstance(value, bool):
        return f"{value:09d}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def read_sql(url: str, query: str, column_map: ColumnMap | None = None) -> Extract:
    """The rows of a SQL query through SQLAlchemy (the node's own database)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            result = conn.execute(text(query))
            header = list(result.keys())
            ssn = (column_map or ColumnMap()).source("ssn")
            data: list[list[str] | str] = [
                [_text(v, ssn=c == ssn) for c, v in zip(header, row, strict=True)] for row in result
            ]
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
