"""A node's health as agency IT reads it: `crosstally node health` against `crosstally node
serve` processes, one that cannot reach the hub's API and one that can (issue 18, bug 3)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from click.testing import Result
from typer.testing import CliRunner

from crosstally.cli import app
from services.loopback import LoopbackHub, LoopbackNode, enroll_all, stop_all
from tests.integration.cluster import FAST_HUB, FAST_NODE

EXTRACT = "record_id,first_name,last_name,dob\nA1,Ann,Lee,2001-01-01\n"


def health(node: LoopbackNode) -> Result:
    return CliRunner().invoke(app, ["node", "health", "--config", str(node.config_file)])


def until(check: Callable[[], Result | None], what: str, timeout: float = 90.0) -> Result:
    """Poll until `check` returns a result; a bounded wait, not a timing assertion."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result is not None:
            return result
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout:.0f} s")


def test_node_health_fails_while_the_node_cannot_reach_the_hub_api(tmp_path: Path) -> None:
    hub = LoopbackHub(tmp_path / "hub", settings=FAST_HUB)
    hub.start()
    extract = tmp_path / "dcf.csv"
    extract.write_text(EXTRACT)
    wrong = LoopbackNode("DCF", tmp_path / "dcf", f"{hub.url}/v1", {"path": extract}, [], FAST_NODE)
    right = LoopbackNode("DSS", tmp_path / "dss", hub.url, {"path": extract}, [], FAST_NODE)
    nodes = [wrong, right]
    try:
        enroll_all(hub, nodes)
        for node in nodes:
            node.launch()

        def failing() -> Result | None:
            result = health(wrong)
            return result if "failing" in result.output else None

        failed = until(failing, "failing health from the node with a wrong hub URL")
        message = " ".join(failed.output.split())
        assert failed.exit_code == 1
        assert "the node cannot work" in message and "without /v1" in message

        def ok() -> Result | None:
            result = health(right)
            return result if "DSS: ok" in result.output else None

        assert until(ok, "ok health from the node with the right hub URL").exit_code == 0
    finally:
        stop_all([n.service for n in nodes])
        stop_all([hub.service])
