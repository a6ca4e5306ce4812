"""What operators and analysts read about a query that ended: its steps, its table, why it
failed (issue 18, bugs 7, 8 and 9); the CLI reads the hub over real HTTP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from typer.testing import CliRunner

from crosstally.cli import app
from protocol.blinding import P256Engine
from protocol.driver import NodeData
from services.loopback import free_port
from tests.services.harness import ANALYST, HubHarness, agreement_for, drive, make_node
from tests.services.harness import template_spec as spec_named

pytestmark = pytest.mark.sqlite_only  # the node's and the hub's rules, not its SQL

CROSSOVER = spec_named(
    "crossover-youth",
    disclosure={"min_cell": 1},
    levels={"dcf.ethnicity": ["hispanic", "non_hispanic", "none_at_dcf"]},
)


@contextmanager
def over_http(hub: HubHarness) -> Iterator[str]:
    """The test's hub app also served by uvicorn on loopback (its lifespan already ran)."""
    port = free_port()
    config = uvicorn.Config(
        hub.client.app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def cli(url: str, token: str, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--hub", url, "--token", token])
    return result.exit_code, result.output


def test_a_released_query_lists_every_step_done_and_prints_its_zero_cells(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    nodes = [
        make_node(hub, a, world[a], tmp_path, engine=engine, agreements=[terms])
        for a in ("DCF", "JBCSSD")
    ]
    query = hub.submit(CROSSOVER)
    status = drive(hub, nodes, query["id"])
    assert status["status"] == "released", status
    tasks = hub.query(query["id"])["tasks"]
    assert {t["kind"] for t in tasks} == {"start", "forward", "join"}
    assert [t["status"] for t in tasks] == ["done"] * len(tasks)  # the join sent the tally

    cells = hub.result(query["id"])["table"]["cells"]
    zeros = [c for c in cells if c["count"] == 0]
    assert zeros, "the extra ethnicity level should leave empty cells"
    with over_http(hub) as url:
        code, output = cli(url, hub.token(ANALYST, "analyst"), "query", "result", query["id"])
        assert code == 0, output
        rows = [line for line in output.splitlines() if line.count("│") >= len(cells[0]["key"])]
        zero_rows = [r for r in rows if r.split("│")[-2].strip() == "0"]
        assert len(zero_rows) == len(zeros)
        assert "Counts of 0 are shown as 0" in output
        code, output = cli(url, hub.token("olga", "operator"), "query", "status", query["id"])
        assert code == 0 and "cancelled" not in output


def test_a_failed_query_says_why_and_that_it_will_not_be_released(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=[terms])
    jj = make_node(hub, "JBCSSD", world["JBCSSD"], tmp_path, engine=engine, agreements=[])
    query = hub.submit(CROSSOVER)
    failed = drive(hub, [dcf, jj], query["id"])
    assert failed["status"] == "failed" and "has not signed agreement" in failed["error"]
    response = hub.client.get(f"/v1/queries/{query['id']}/result", headers=hub.analyst)
    assert response.status_code == 410
    with over_http(hub) as url:
        code, output = cli(url, hub.token(ANALYST, "analyst"), "query", "result", query["id"])
    message = " ".join(output.split())
    assert code == 1
    assert f"query {query['id']} failed: " in message and "has not signed agreement" in message
    assert "it will not be released" in message and "no released result yet" not in message
