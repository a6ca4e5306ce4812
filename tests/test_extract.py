"""Extract reader: CSV, Parquet and SQL through column maps; bad rows reported, never fatal."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crosstally.extract import (
    ExtractError,
    load_column_map,
    quality_profile,
    read_extract,
)
from crosstally.synth import generate, write_world

HEADER = "record_id,first_name,last_name,dob,ssn,sex,zip,program\n"


def write(path: Path, text: str | bytes) -> Path:
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_malformed_rows_are_excluded_and_reported_with_their_line(tmp_path: Path) -> None:
    world = generate(people=400, seed=11)
    paths = write_world(world, tmp_path, malformed_rows=6)
    extract = read_extract(paths["dcf"])
    table = world.tables["dcf"]
    assert len(extract.records) == len(table)
    assert [r.record_id for r in extract.records] == table.record_ids()
    excluded = [p for p in extract.problems if not p.kept]
    assert len(excluded) == 6
    lines = paths["dcf"].read_text().splitlines()
    for problem in excluded:
        assert problem.source == str(paths["dcf"])
        broken = lines[problem.line - 1]
        assert broken.startswith("DCF-BAD") or broken.startswith(",")
        assert "(row excluded)" in str(problem)
    messages = sorted({p.message.split(":")[0] for p in excluded})
    assert any("fields, the header has" in m for m in messages)
    assert any(p.column == "record_id" and "empty" in p.message for p in excluded)
    assert quality_profile(extract).excluded_rows == 6


def test_a_column_map_reads_a_foreign_layout(tmp_path: Path) -> None:
    source = write(
        tmp_path / "dss.csv",
        "CLIENT_ID,GIVEN,SURNAME,BIRTH_DT,SOC_SEC,GENDER,SNAP_FLAG,CASEWORKER\n"
        "C1,Ana,Diaz,2004-03-09,212-45-6781,F,Y,K. Smith\n"
        "C2,Li,Wong,03/10/2005,,M,N,J. Doe\n",
    )
    column_map = write(
        tmp_path / "map.toml",
        '[columns]\nrecord_id = "CLIENT_ID"\nfirst_name = "GIVEN"\nlast_name = "SURNAME"\n'
        'dob = "BIRTH_DT"\nssn = "SOC_SEC"\nsex = "GENDER"\n\n'
        '[attributes]\ninclude = ["SNAP_FLAG"]\n',
    )
    extract = read_extract(source, load_column_map(column_map))
    first, second = extract.records
    assert (first.record_id, first.first_name, first.last_name) == ("C1", "Ana", "Diaz")
    assert (first.dob, first.ssn, first.sex) == ("2004-03-09", "212-45-6781", "F")
    assert first.attributes == {"SNAP_FLAG": "Y"}  # CASEWORKER is not included
    assert second.ssn is None and second.dob == "03/10/2005"
    assert extract.columns[:6] == ["record_id", "first_name", "last_name", "dob", "sex", "ssn"]
    assert extract.problems == []


def test_column_map_errors_name_the_problem(tmp_path: Path) -> None:
    unknown = write(tmp_path / "u.toml", '[columns]\nbirthday = "DOB"\n')
    with pytest.raises(ExtractError, match=r"unknown canonical field.*birthday"):
        load_column_map(unknown)
    not_a_list = write(tmp_path / "a.toml", '[attributes]\ninclude = "SNAP"\n')
    with pytest.raises(ExtractError, match="include must be a list"):
        load_column_map(not_a_list)
    source = write(tmp_path / "x.csv", HEADER + "A1,Ann,Lee,2001-01-01,,F,06106,x\n")
    missing = write(tmp_path / "m.toml", '[columns]\ndob = "BIRTH_DT"\n')
    with pytest.raises(ExtractError, match=r"x.csv: the column map names .*dob = 'BIRTH_DT'"):
        read_extract(source, load_column_map(missing))


def test_duplicate_record_ids_are_excluded_naming_the_first_line(tmp_path: Path) -> None:
    source = write(
        tmp_path / "dup.csv",
        HEADER + "A1,Ann,Lee,2001-01-01,,F,06106,x\nA2,Bo,Kim,2002-02-02,,M,06106,y\n"
        "A1,Ann,Lee,2001-01-01,,F,06106,x\n",
    )
    extract = read_extract(source)
    assert [r.record_id for r in extract.records] == ["A1", "A2"]
    (problem,) = extract.problems
    assert (problem.line, problem.column, problem.kept) == (4, "record_id", False)
    assert "already used on line 2" in str(problem) and str(source) in str(problem)


def test_invalid_dob_and_ssn_rows_are_kept_and_counted(tmp_path: Path) -> None:
    source = write(
        tmp_path / "bad.csv",
        HEADER + "A1,Ann,Lee,2001-02-30,212-45-6781,F,06106,x\n"
        "A2,Bo,Kim,2002-02-02,666-12-3456,M,06106,y\n"
        "A3,Cy,Ng,,,,06106,z\n",
    )
    extract = read_extract(source)
    assert len(extract.records) == 3
    by_field = {p.field: p for p in extract.problems}
    assert by_field["dob"].line == 2 and by_field["dob"].kept
    assert "not a real date" in by_field["dob"].message
    assert by_field["ssn"].line == 3 and by_field["ssn"].column == "ssn"
    assert "6" not in by_field["ssn"].message.replace("666", "")  # digits are not echoed
    profile = quality_profile(extract)
    assert (profile.invalid_dob, profile.invalid_ssn) == (1, 1)
    assert profile.missing["dob"] == pytest.approx(1 / 3)
    assert profile.missing["sex"] == pytest.approx(1 / 3)


def test_bytes_that_are_not_utf8_are_replaced_and_reported(tmp_path: Path) -> None:
    source = write(tmp_path / "latin1.csv", (HEADER + "A1,Jos\xe9,Lee,2001-01-01,,M,06106,x\n")
                   .encode("latin-1"))  # fmt: skip
    extract = read_extract(source)
    assert extract.records[0].first_name == "Jos\ufffd"
    (problem,) = extract.problems
    assert (problem.line, problem.column, problem.kept) == (2, "first_name", True)
    assert "UTF-8" in problem.message


def test_unreadable_files_fail_with_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ExtractError, match="empty"):
        read_extract(write(tmp_path / "empty.csv", ""))
    with pytest.raises(ExtractError, match="no record id column 'record_id'"):
        read_extract(write(tmp_path / "noid.csv", "first_name,dob\nAnn,2001-01-01\n"))
    with pytest.raises(ExtractError, match="'dob' appear more than once"):
        read_extract(write(tmp_path / "twice.csv", "record_id,dob,dob\nA1,2001-01-01,x\n"))
    with pytest.raises(ExtractError, match="cannot open"):
        read_extract(tmp_path / "absent.csv")


def test_parquet_extract_with_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "x.parquet"
    pq.write_table(
        pa.table({
            "record_id": ["P1", "P2", "P1"],
            "first_name": ["Ann", "Bo", "Ann"],
            "last_name": ["Lee", "Kim", "Lee"],
            "dob": ["2001-01-01", None, "2001-01-01"],
            "ssn": [12_345_678, 234_567_890, None],  # numeric: the leading 0 was lost
            "zip": [6106.0, None, 6106.0],
            "snap": [True, False, True],
        }),
        path,
    )  # fmt: skip
    extract = read_extract(path)
    first, second = extract.records
    assert (first.ssn, first.zip) == ("012345678", "6106")
    assert second.dob is None and second.attributes["snap"] == "False"
    (problem,) = extract.problems
    assert (problem.line, problem.kept) == (3, False) and "already used on line 1" in str(problem)


def test_sql_extract_through_sqlalchemy(tmp_path: Path) -> None:
    db = tmp_path / "node.sqlite"
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE clients (id TEXT, fname TEXT, lname TEXT, birth TEXT, ssn INTEGER)"
        )
        conn.executemany(
            "INSERT INTO clients VALUES (?, ?, ?, ?, ?)",
            [
                ("S1", "Ann", "Lee", "2001-01-01", 12_345_678),
                ("S2", "Bo", "Kim", "2001-13-01", None),
                (None, "Cy", "Ng", "2003-03-03", None),
            ],
        )
    column_map = write(
        tmp_path / "m.toml",
        '[columns]\nrecord_id = "id"\nfirst_name = "fname"\nlast_name = "lname"\ndob = "birth"\n',
    )
    extract = read_extract(
        f"sqlite:///{db}", load_column_map(column_map), query="SELECT * FROM clients ORDER BY id"
    )
    assert [r.record_id for r in extract.records] == ["S1", "S2"]
    assert extract.records[0].ssn == "012345678"
    kinds = {(p.line, p.column, p.kept) for p in extract.problems}
    assert (1, "id", False) in kinds  # NULL id sorts first
    assert (3, "birth", True) in kinds
    with pytest.raises(ExtractError, match="SQL extract failed"):
        read_extract(f"sqlite:///{db}", query="SELECT * FROM nowhere")


def test_a_synthetic_extract_round_trips(tmp_path: Path) -> None:
    world = generate(people=300, seed=3)
    paths = write_world(world, tmp_path)
    extract = read_extract(paths["jbcssd"])
    expected = world.extracts["jbcssd"]
    assert [r.record_id for r in extract.records] == [r.record_id for r in expected]
    assert extract.records[0].attributes == {k: v for k, v in expected[0].attributes.items() if v}
    with paths["jbcssd"].open() as handle:
        header = next(csv.reader(handle))
    assert extract.columns == header


def _rows(count: int) -> list[str]:
    return [f"A{i},Ann{i},Lee,2001-01-{1 + i % 28:02d},,F,06106,x\n" for i in range(count)]


def test_a_stray_quote_excludes_its_own_row_and_the_rows_after_it_are_read(
    tmp_path: Path,
) -> None:
    rows = _rows(387)  # the header and these: a 388-line file
    rows[20] = 'A20,"Ann20,Lee,2001-01-21,,F,06106,x\n'  # line 22 opens a quote it never closes
    rows[40] = 'A40,"Lee, Ann",Lee,2001-01-13,,F,06106,"a ""quoted"" word"\n'
    source = write(tmp_path / "stray.csv", HEADER + "".join(rows))
    extract = read_extract(source)
    (problem,) = extract.problems
    assert problem.line == 22 and not problem.kept and "quote" in problem.message
    assert "Ann20" not in str(problem)  # the line and the reason, never the value
    assert extract.rows_read == 387 and extract.excluded == 1
    assert [r.record_id for r in extract.records] == [f"A{i}" for i in range(387) if i != 20]
    legit = extract.records[39]
    assert legit.first_name == "Lee, Ann" and legit.attributes["program"] == 'a "quoted" word'


def test_a_stray_quote_that_a_later_quote_closes_loses_no_row(tmp_path: Path) -> None:
    rows = _rows(30)
    rows[3] = 'A3,"Ann3,Lee,2001-01-04,,F,06106,x\n'
    rows[9] = 'A9,Ann9,Lee,2001-01-10,,F,06106,"x"\n'  # where the csv module would close it
    rows[29] = 'A29,Ann29,Lee,2001-01-02,,F,06106,"x\n'  # the last line, still open at the end
    extract = read_extract(write(tmp_path / "two.csv", HEADER + "".join(rows)))
    assert [(p.line, p.kept) for p in extract.problems] == [(5, False), (31, False)]
    assert extract.rows_read == 30 and extract.excluded == 2
    assert len(extract.records) == 28 and extract.records[8].record_id == "A9"


def test_a_quoted_field_may_hold_a_line_break(tmp_path: Path) -> None:
    text = (
        HEADER + 'A1,Ann,Lee,2001-01-01,,F,06106,"first line\nsecond, line"\n'
        "A2,Bo,Kim,2002-02-02,,M,06106,y\n"
        "A2,Bo,Kim,2002-02-02,,M,06106,y\n"
    )
    extract = read_extract(write(tmp_path / "multiline.csv", text))
    assert [r.record_id for r in extract.records] == ["A1", "A2"]
    assert extract.records[0].attributes["program"] == "first line\nsecond, line"
    (duplicate,) = extract.problems
    assert duplicate.line == 5 and "already used on line 4" in duplicate.message
