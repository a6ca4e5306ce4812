"""The agency node's own parts: settings, keys, its agreement check, its store and outbound log."""

from __future__ import annotations

import datetime as dt
import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crosstally.cli import app
from crosstally.extract import ColumnMap
from protocol.envelope import PartyKeys
from protocol.spec import parse_spec
from services.agency_node.config import ConfigError, load_settings
from services.agency_node.keys import read_keys, write_keys
from services.agency_node.review import review
from services.agency_node.runtime import load_extract
from services.agency_node.store import NodeStore
from services.agency_node.worker import WorkerStatus
from services.loopback import node_toml
from tests.services.harness import agreement_for, template_spec

CROSSOVER = template_spec("crossover-youth")
TODAY = dt.date(2026, 6, 30)


def write_config(tmp_path: Path, **extra: object) -> Path:
    settings = {
        "agency": "DCF",
        "hub_url": "http://127.0.0.1:8700",
        "credential_file": "credential",
        "keys_file": "dcf.keys.json",
        "data_dir": "data",
        "extract": {"path": "dcf.csv", "columns": {"record_id": "CLIENT_ID"}},
        **extra,
    }
    (tmp_path / "credential").write_text("t" * 43)
    path = tmp_path / "node.toml"
    path.write_text(node_toml(settings, [agreement_for(CROSSOVER)]))
    return path


def test_settings_come_from_the_file_with_environment_overrides(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path)
    monkeypatch.setenv("CROSSTALLY_NODE_POLL_SECONDS", "3")
    settings = load_settings(path)
    assert settings.agency == "DCF" and settings.poll_seconds == 3
    assert settings.extract.path == tmp_path / "dcf.csv"  # relative to the file
    assert settings.token() == "t" * 43
    assert [a.id for a in settings.agreements] == ["DSA-2024-007"]


def test_placeholder_credentials_and_open_admin_ports_are_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    (tmp_path / "credential").write_text("changeme")
    with pytest.raises(ConfigError, match="credential is missing or a placeholder"):
        load_settings(path)
    (tmp_path / "credential").write_text("t" * 43)
    with pytest.raises(ConfigError, match="loopback only"):
        load_settings(write_config(tmp_path, admin_host="0.0.0.0"))


def test_keys_are_written_for_the_owner_only_and_read_back(tmp_path: Path) -> None:
    keys = PartyKeys.generate()
    path = tmp_path / "k.json"
    write_keys(path, keys, "DCF")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_keys(path).public == keys.public
    with pytest.raises(FileExistsError):
        write_keys(path, keys, "DCF")


def test_the_node_reads_a_sql_extract_through_its_column_map(tmp_path: Path) -> None:
    database = tmp_path / "agency.sqlite"
    with sqlite3.connect(database) as conn:
        conn.execute(
            "CREATE TABLE clients (CLIENT_ID TEXT, FNAME TEXT, LNAME TEXT, DOB TEXT, placed TEXT)"
        )
        conn.executemany(
            "INSERT INTO clients VALUES (?, ?, ?, ?, ?)",
            [
                ("C1", "Ana", "Diaz", "2008-02-03", "Y"),
                ("C2", "Bo", "Li", "2009-13-40", "N"),
                ("", "No", "Id", "2010-01-01", "Y"),
            ],
        )
    settings = load_settings(
        write_config(tmp_path),
        extract={
            "url": f"sqlite:///{database}",
            "query": "SELECT * FROM clients",
            "columns": {
                "record_id": "CLIENT_ID",
                "first_name": "FNAME",
                "last_name": "LNAME",
                "dob": "DOB",
            },
        },
    )
    extract = load_extract(settings)
    assert [r.record_id for r in extract.records] == ["C1", "C2"]
    assert extract.excluded == 1 and any(p.field == "dob" for p in extract.problems)
    assert "placed" in extract.columns
    assert ColumnMap().source("dob") == "dob"


def test_a_node_runs_only_what_its_agency_signed() -> None:
    spec = parse_spec(CROSSOVER)
    signed = agreement_for(CROSSOVER)
    ok = review(
        spec, agency="DCF", agreements=[signed], on_unlisted="refuse", approved=False, today=TODAY
    )
    assert ok.verdict == "run"
    unsigned = review(
        spec, agency="DCF", agreements=[], on_unlisted="hold", approved=False, today=TODAY
    )
    assert unsigned.verdict == "hold" and "has not signed agreement DSA-2024-007" in unsigned.reason
    expired = signed.model_copy(update={"valid_until": dt.date(2025, 1, 1)})
    late = review(
        spec, agency="DCF", agreements=[expired], on_unlisted="refuse", approved=False, today=TODAY
    )
    assert late.verdict == "refuse" and "expired on 2025-01-01" in late.reason
    narrower = signed.model_copy(update={"contributions": {"DCF": ["placed"], "JBCSSD": []}})
    # Each node checks its own columns only: JB-CSSD's part is JB-CSSD's business.
    dcf = review(
        spec, agency="DCF", agreements=[narrower], on_unlisted="refuse", approved=False, today=TODAY
    )
    assert "does not let DCF contribute" in dcf.reason and "JBCSSD contribute" not in dcf.reason
    approved = review(
        spec, agency="DCF", agreements=[], on_unlisted="refuse", approved=True, today=TODAY
    )
    assert approved.verdict == "run"


def test_the_outbound_log_is_chained_and_tamper_evident(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    for step in ("rows:dcf:1", "rows:jj:2"):
        store.log_outbound(
            query_id="q",
            kind="rows",
            step=step,
            recipient="JBCSSD",
            size=100,
            rows=5,
            outcome="relayed",
        )
    assert store.verify_outbound().ok and store.verify_outbound().entries == 2
    with sqlite3.connect(tmp_path / "node.sqlite") as conn:
        conn.execute("UPDATE outbound_log SET rows = 6 WHERE seq = 1")
    check = store.verify_outbound()
    assert not check.ok and check.first_bad == 1


def test_a_query_secret_is_kept_until_the_query_ends(tmp_path: Path) -> None:
    store = NodeStore(tmp_path / "node.sqlite")
    store.save_query_state("q", b"s" * 32, b"e")
    store.save_query_state("q", b"x" * 32, b"f")  # a re-run never replaces the first secret
    assert store.query_state("q") == (b"s" * 32, b"e") and store.holding() == ["q"]
    store.save_members("q", ["R1"])
    store.forget("q")
    assert store.query_state("q") is None and store.holding() == []
    assert store.members("q") == ["R1"]  # the match result is the node's to keep


def test_a_steward_name_the_hub_would_refuse_is_refused_at_the_command_line(
    tmp_path: Path,
) -> None:
    path = write_config(tmp_path)
    store = NodeStore(load_settings(path).store_path)
    store.hold("q1", "DSA-2024-007", "JBCSSD has not signed agreement DSA-2024-007")
    args = ["node", "approve", "q1", "--config", str(path), "--steward"]
    result = CliRunner().invoke(app, [*args, "Jane Steward (JBCSSD)"])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "steward name 'Jane Steward (JBCSSD)' is not allowed" in message
    assert "letters, digits and the characters _ . @ -" in message
    (held,) = store.held()
    assert held.decision == "pending" and held.steward is None
    result = CliRunner().invoke(app, [*args, "jane.steward"])
    assert result.exit_code == 0, result.output
    (held,) = store.held()
    assert held.decision == "approved" and held.steward == "jane.steward"


def test_a_credential_file_with_the_enrolment_header_is_called_malformed(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    (tmp_path / "credential").write_text("enrolled DCF; its credential (shown once):\n" + "t" * 43)
    with pytest.raises(ConfigError, match=r"credential file .* is malformed: it holds 2 lines"):
        load_settings(path)


def test_health_follows_the_last_contact_and_the_last_error() -> None:
    start = dt.datetime(2026, 6, 30, 9, 0, tzinfo=dt.UTC)
    stale = dt.timedelta(minutes=2)
    status = WorkerStatus(started=start)
    assert status.health(now=start, stale_after=stale) == "starting"
    assert status.health(now=start + dt.timedelta(minutes=3), stale_after=stale) == "failing"
    status.last_contact = start + dt.timedelta(seconds=10)
    assert status.health(now=start + dt.timedelta(seconds=20), stale_after=stale) == "ok"
    status.last_error_at, status.failures = start + dt.timedelta(seconds=30), 1
    assert status.health(now=start + dt.timedelta(seconds=40), stale_after=stale) == "degraded"
    status.failures = 3
    assert status.health(now=start + dt.timedelta(seconds=40), stale_after=stale) == "failing"
    # What issue 18 saw: a last error and a last contact 11 minutes old.
    status.failures = 0
    assert status.health(now=start + dt.timedelta(minutes=11), stale_after=stale) == "failing"


def test_node_init_names_the_agreements_table_in_its_next_steps(tmp_path: Path) -> None:
    directory = tmp_path / "dcf"
    result = CliRunner().invoke(
        app,
        ["node", "init", "--agency", "DCF", "--dir", str(directory), "--hub-url",
         "https://hub.example.ct.gov", "--extract", "dcf.csv"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "add the agreements DCF signed to node.toml ([[agreements]])" in result.output


def test_settings_errors_are_one_plain_line_saying_what_to_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    internals = ("input_type", "input_value", "validation error", "pydantic.dev", "[type=")
    path = write_config(tmp_path, on_unlisted="maybe", agency="dcf")
    result = CliRunner().invoke(app, ["node", "check", "--config", str(path)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "agency: not allowed: an agency code is 1 to 32 upper-case letters" in message
    assert "on_unlisted: Input should be 'refuse' or 'hold'" in message
    assert not [i for i in internals if i in result.output]

    path = write_config(tmp_path)
    (tmp_path / "credential").unlink()
    result = CliRunner().invoke(app, ["node", "check", "--config", str(path)])
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "credential_file" in message and "No such file or directory; save the token" in message
    assert not [i for i in internals if i in result.output]

    for name in [k for k in os.environ if k.startswith("CROSSTALLY_HUB_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("CROSSTALLY_HUB_PORT", "eighty")
    result = CliRunner().invoke(app, ["hub", "migrate"])
    assert result.exit_code == 1
    assert "port: Input should be a valid integer" in " ".join(result.output.split())
    assert not [i for i in internals if i in result.output]


def test_agreement_terms_that_do_not_validate_are_named_plainly(tmp_path: Path) -> None:
    terms = agreement_for(CROSSOVER).model_dump(mode="json")
    del terms["participants"]
    terms["color"] = "blue"
    (tmp_path / "terms.json").write_text(json.dumps(terms))
    result = CliRunner().invoke(
        app, ["admin", "agreement", "create", str(tmp_path / "terms.json"), "--token", "t" * 43]
    )
    assert result.exit_code == 1
    message = " ".join(result.output.split())
    assert "participants: missing" in message and "color: is not an agreement term" in message
    assert "input_type" not in result.output and "pydantic.dev" not in result.output
