"""What agency IT watches: /metrics in Prometheus format at the hub and at each node's
loopback admin app, and JSON log lines that name the query and step and never a record
value, scraped and read from real `hub serve` and `node serve` processes (issue 18)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from protocol.blinding import P256Engine
from protocol.spec import parse_spec
from services.hub_api import HubError
from services.loopback import LoopbackHub
from tests.integration.cluster import FAST_HUB, Cluster, Extracts, cluster, write_extracts
from tests.services.harness import agreement_for, template_spec
from tests.services.leakscan import Scanner, needles_for, without_category_labels

PAIR = ("DCF", "JBCSSD")
CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str, token: str | None = None) -> Samples:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    response = httpx.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in samples, f"{name}{labels} not scraped"
    return samples[key]


def json_lines(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    assert lines, f"{path} is empty"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"{path.name}: not a JSON line: {line[:200]}") from None
    return parsed


@pytest.fixture(scope="module")
def extracts(tmp_path_factory: pytest.TempPathFactory) -> Extracts:
    return write_extracts(tmp_path_factory.mktemp("extracts"), people=400, seed=5)


@pytest.fixture(scope="module")
def released(
    tmp_path_factory: pytest.TempPathFactory, extracts: Extracts
) -> Iterator[tuple[Cluster, str]]:
    """One crossover query released by a hub and two nodes that all log JSON lines: the
    hub through CROSSTALLY_HUB_LOG_FORMAT, the nodes through node.toml's log_format."""
    directory = tmp_path_factory.mktemp("operability")
    hub = LoopbackHub(directory / "hub", settings={**FAST_HUB, "log_format": "json"})
    terms = agreement_for(CROSSOVER)
    with cluster(
        directory, extracts, PAIR, [terms], hub=hub, node_settings={"log_format": "json"}
    ) as running:
        with running.api(running.operator) as api:
            query = api.submit(CROSSOVER)
            assert api.wait(query.id, timeout=180).status == "released"
        yield running, query.id


def _monitor(running: Cluster) -> str:
    """A monitor credential: what Prometheus scrapes the hub with."""
    with running.hub.admin() as admin:
        return admin.issue("prometheus", "monitor").token


def test_the_hub_serves_prometheus_metrics(released: tuple[Cluster, str]) -> None:
    running, _ = released
    samples = scrape(f"{running.hub.url}/metrics", _monitor(running))
    assert value(samples, "crosstally_hub_queries", status="released") == 1
    assert value(samples, "crosstally_hub_queries", status="failed") == 0
    assert value(samples, "crosstally_hub_tasks", kind="start", status="done") == 2
    assert value(samples, "crosstally_hub_task_leases_total", kind="start") >= 2
    assert value(samples, "crosstally_hub_task_leases_total", kind="join") >= 1
    assert value(samples, "crosstally_hub_steps_total", kind="start", outcome="done") == 2
    assert value(samples, "crosstally_hub_step_duration_seconds_count", kind="start") == 2
    assert value(samples, "crosstally_hub_step_duration_seconds_sum", kind="start") > 0
    rows_in = value(samples, "crosstally_hub_relay_bytes_total", direction="in", what="rows")
    rows_out = value(samples, "crosstally_hub_relay_bytes_total", direction="out", what="rows")
    assert rows_in > 10_000 and rows_out == rows_in  # every sealed part fetched once
    assert value(samples, "crosstally_hub_relay_bytes_total", direction="in", what="tally") > 0


def test_the_hubs_metrics_need_a_monitor_or_admin_credential(
    released: tuple[Cluster, str],
) -> None:
    """Relay totals are exact: with one query running they give a row set's size, and so
    a cohort's (issue 13, finding 4). An analyst or operator may not read them."""
    running, _ = released
    url = f"{running.hub.url}/metrics"
    anonymous = httpx.get(url, timeout=10)
    assert anonymous.status_code == 401 and "crosstally_hub_relay" not in anonymous.text
    for token in (running.analyst, running.operator):
        refused = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        assert refused.status_code == 403, refused.text
        assert "monitor or admin" in refused.json()["error"]["message"]
    with running.hub.admin() as admin:
        monitor = admin.issue("grafana", "monitor").token
    # A monitor credential reads metrics and nothing else.
    with running.api(monitor) as api, pytest.raises(HubError) as refused_query:
        api.submit(CROSSOVER)
    assert refused_query.value.status == 403
    assert httpx.get(f"{running.hub.url}/healthz", timeout=10).status_code == 200


def test_each_node_serves_prometheus_metrics_on_loopback(released: tuple[Cluster, str]) -> None:
    running, _ = released
    sent_by_nodes = 0.0
    for agency, node in running.nodes.items():
        samples = scrape(f"http://127.0.0.1:{node.admin_port}/metrics")
        assert value(samples, "crosstally_node_steps_total", kind="start", outcome="done") == 1
        assert value(samples, "crosstally_node_step_duration_seconds_count", kind="start") == 1
        assert value(samples, "crosstally_node_health", status="ok") == 1
        assert value(samples, "crosstally_node_last_contact_timestamp_seconds") > 1.7e9
        assert value(samples, "crosstally_node_extract_records") > 0
        assert value(samples, "crosstally_node_errors_total", kind="hub_unreachable") == 0
        assert value(samples, "crosstally_node_outbound_rows_total", kind="rows") > 0, agency
        sent = value(samples, "crosstally_node_relay_bytes_total", direction="out")
        assert sent == value(samples, "crosstally_node_outbound_bytes_total", kind="rows")
        sent_by_nodes += sent
    hub = scrape(f"{running.hub.url}/metrics", running.hub.admin_token)
    assert sent_by_nodes == value(
        hub, "crosstally_hub_relay_bytes_total", direction="in", what="rows"
    )


def test_json_log_lines_name_the_query_and_step_and_no_record(
    released: tuple[Cluster, str], extracts: Extracts
) -> None:
    running, query_id = released
    hub_lines = json_lines(running.hub.directory / "hub.log")
    assert {"time", "level", "logger", "message"} <= set(hub_lines[0])
    mailbox = [line for line in hub_lines if "/v1/node/mailbox/" in line["message"]]
    assert mailbox and all(
        line["query_id"] == query_id and line["step"].startswith("rows:") for line in mailbox
    )
    leased = [line for line in hub_lines if "/v1/node/tasks/" in line["message"]
              and "/claim" not in line["message"]]  # fmt: skip
    assert leased and all(line.get("query_id") == query_id and "step" in line for line in leased)

    for agency, node in running.nodes.items():
        lines = json_lines(node.directory / "node.log")
        tasks = [line for line in lines if line["message"].startswith("task ")]
        assert tasks, agency
        assert all(line["query_id"] == query_id and line["agency"] == agency for line in tasks)
        assert {line["step"] for line in tasks} >= {"start"}

    engine = P256Engine(workers=1)
    try:
        needles = needles_for([parse_spec(CROSSOVER)], extracts.data, engine)
    finally:
        engine.close()
    scanner = Scanner(without_category_labels(needles, extracts.data))
    logs = [running.hub.directory / "hub.log"] + [
        n.directory / "node.log" for n in running.nodes.values()
    ]
    leaks = [f"{p}: {why}" for p in logs for why in scanner.find(p.read_bytes())]
    assert leaks == []
