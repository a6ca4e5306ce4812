"""A steward and agency IT at real `crosstally node serve` processes: `node check --hub`
against a real hub, `--strict` on a bad extract, the held task's brief at /held, and an
agreement added while the node runs (issue 18)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
from click.testing import Result
from typer.testing import CliRunner

from crosstally.cli import app
from services.hub_api import HubAPI
from services.loopback import LoopbackHub, LoopbackNode, enroll_all
from tests.integration.cluster import FAST_HUB, FAST_NODE, cluster, write_extracts
from tests.services.harness import agreement_for, template_spec

GOOD = "record_id,first_name,last_name,dob\nA1,Ann,Lee,2001-01-01\nA2,Bo,Ray,1999-05-06\n"
# A stray quote on line 4 (the header is line 1) and a date that does not exist on line 5.
BAD = GOOD + 'A3,"Cy,Tam,2002-02-02\nA4,Di,Fox,2001-02-30\nA5,Ed,Orr,1998-03-04\n'
T = TypeVar("T")
CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def said(result: Result) -> str:
    return " ".join(result.output.split())


def test_node_check_tries_the_hub_and_the_credential_and_strict_fails_on_excluded_rows(
    tmp_path: Path,
) -> None:
    hub = LoopbackHub(tmp_path / "hub", settings=FAST_HUB)
    hub.start()
    extract = tmp_path / "dcf.csv"
    extract.write_text(GOOD)
    node = LoopbackNode("DCF", tmp_path / "dcf", hub.url, {"path": extract}, [], FAST_NODE)
    try:
        enroll_all(hub, [node])
        config = str(node.config_file)
        checked = invoke("node", "check", "-c", config, "--hub", "--strict")
        assert checked.exit_code == 0, checked.output
        assert "crosstally hub" in said(checked)
        assert "the hub accepts the credential of node DCF" in said(checked)
        assert "check failed" not in said(checked)

        token = (node.directory / "credential").read_text()
        (node.directory / "credential").write_text("x" + token[1:])
        wrong = invoke("node", "check", "-c", config, "--hub")
        assert wrong.exit_code == 1
        assert "the hub refuses this credential" in said(wrong)
        assert "check failed: credential" in said(wrong)
        assert "credential" not in said(invoke("node", "check", "-c", config))  # no --hub

        node.extract = {"path": tmp_path / "bad.csv"}
        (tmp_path / "bad.csv").write_text(BAD)
        (node.directory / "credential").unlink()
        node.configure(token)
        lenient = invoke("node", "check", "-c", config)
        assert lenient.exit_code == 0, lenient.output
        text = said(lenient)
        assert "line 4" in text and "no quote closes" in text and "not a real date" in text
        strict = invoke("node", "check", "-c", config, "--strict")
        assert strict.exit_code == 1 and "rows excluded (--strict)" in said(strict)
    finally:
        assert hub.service is not None
        hub.service.stop()
    gone = invoke("node", "check", "-c", config, "--hub")
    assert gone.exit_code == 1 and "cannot reach the hub" in said(gone)


def test_a_running_node_shows_the_brief_at_held_and_reads_an_added_agreement(
    tmp_path: Path,
) -> None:
    extracts = write_extracts(tmp_path / "extracts", people=300, seed=8)
    terms = agreement_for(CROSSOVER)
    with cluster(
        tmp_path, extracts, ["DCF", "JBCSSD"], [terms],
        node_agreements={"DCF": [terms], "JBCSSD": []},
        node_settings={"on_unlisted": "hold"},
    ) as running:  # fmt: skip
        jj = running.nodes["JBCSSD"]
        api = HubAPI(running.hub.url, running.operator)
        first = api.submit(CROSSOVER)
        held = _until(lambda: _held(jj), "a held task at JB-CSSD")
        (row,) = held
        assert row["query_id"] == first.id and row["pending"]
        brief = row["brief"]
        assert {"label": "jj", "node": "JBCSSD", "where": "juvenile_cases >= 1"} in brief["cohorts"]
        assert brief["columns"] == ["first_contact", "juvenile_cases"]
        assert brief["partners"] == ["DCF"] and brief["agreement_terms"] is None

        with running.hub.admin() as admin:
            (recorded,) = admin.agreements()
        signed = tmp_path / "DSA-2024-007.json"
        signed.write_text(json.dumps(recorded.model_dump(mode="json")))
        added = invoke("node", "agreement", "add", str(signed), "-c", str(jj.config_file), "-y")
        assert added.exit_code == 0, added.output

        approved = invoke("node", "approve", first.id, "-c", str(jj.config_file),
                          "--steward", "jj.steward")  # fmt: skip
        assert approved.exit_code == 0, approved.output
        assert api.wait(first.id, timeout=180).status == "released"
        # The same process, never restarted, now runs the query under its new copy.
        second = api.submit(CROSSOVER)
        assert api.wait(second.id, timeout=180).status == "released"
        assert [h["query_id"] for h in _held(jj, every=True)] == [first.id]
        listed = httpx.get(f"http://127.0.0.1:{jj.admin_port}/agreements", timeout=5).json()
        assert [a["id"] for a in listed["agreements"]] == ["DSA-2024-007"]
        assert "re-read: DSA-2024-007" in (jj.directory / "node.log").read_text()


def _held(node: LoopbackNode, every: bool = False) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{node.admin_port}/held"
    rows: list[dict[str, object]] = httpx.get(url, params={"all": every}, timeout=5).json()
    return rows


def _until(check: Callable[[], T], what: str, timeout: float = 120.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"no {what} within {timeout:.0f} s")
