"""The query flow through the hub's API with in-process nodes, on SQLite and PostgreSQL:
results equal the protocol's own; keys and relay blobs die with the query; leases, holds,
tampering and replays behave."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from protocol.blinding import P256Engine, make_engine
from protocol.driver import NodeData, match_members, run_tally
from protocol.spec import parse_spec
from services.hub.app import sweep_once
from services.hub.mailbox.models import Blob
from services.hub.queries.models import Query
from services.hub.tasks.models import Task
from services.wire import SIGNATURE_HEADER
from tests.services.harness import (
    HubHarness,
    InProcessNode,
    agreement_for,
    bearer,
    drive,
    make_node,
    template_spec,
)

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})
PAIR = ("DCF", "JBCSSD")
DESTROY_AFTER = dt.date(2030, 12, 31)


def pair(
    hub: HubHarness,
    world: dict[str, NodeData],
    engine: P256Engine,
    tmp_path: Path,
    document: dict[str, object] = CROSSOVER,
    **kw: object,
) -> list[InProcessNode]:
    terms = agreement_for(document, destroy_results_after=DESTROY_AFTER)
    hub.agree(terms)
    return [
        make_node(hub, a, world[a], tmp_path, engine=engine, agreements=[terms], **kw)  # type: ignore[arg-type]
        for a in PAIR
    ]


def test_crossover_youth_through_the_hub_equals_run_tally(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    assert query["status"] == "running" and query["ring"] == list(PAIR)
    status = drive(hub, nodes, query["id"])
    assert status["status"] == "released", status
    assert status["progress"]["steps_done"] == status["progress"]["steps_total"]
    expected = run_tally(parse_spec(CROSSOVER), world, engine=engine).result
    assert expected.released.total.count
    assert hub.result(query["id"])["table"] == expected.released.to_dict()
    # The private key and every relay blob died with the query; nodes forgot their secrets.
    with hub.db.transaction() as session:
        row = session.get(Query, query["id"])
        assert row is not None and row.sealed_private_key is None
        assert session.scalars(select(Blob)).first() is None
    for node in nodes:
        assert node.store.holding() == []
        assert node.store.verify_outbound().ok
        assert {e.kind for e in node.store.outbound()} <= {"rows", "tally"}
    # On the agreement's destruction date the released table goes too.
    hub.clock.now = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)
    sweep_once(hub.client.app.state.hub)  # type: ignore[attr-defined]
    gone = hub.client.get(f"/v1/queries/{query['id']}/result", headers=hub.analyst)
    assert gone.status_code == 410 and hub.query(query["id"])["status"] == "purged"


@pytest.mark.sqlite_only
def test_a_query_on_the_x25519_curve_runs_on_the_nodes_engine_for_it(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    document = {**CROSSOVER, "linkage": {**CROSSOVER["linkage"], "curve": "x25519"}}
    nodes = pair(hub, world, engine, tmp_path, document)  # the agreement fixes the curve
    query = hub.submit(document)
    assert drive(hub, nodes, query["id"])["status"] == "released"
    with make_engine("x25519", 1) as x25519:
        expected = run_tally(parse_spec(document), world, engine=x25519).result.released
    assert hub.result(query["id"])["table"] == expected.to_dict()


def test_a_match_leaves_record_ids_with_the_requester_and_a_count_at_the_hub(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    document = template_spec("pebt-match", disclosure={"min_cell": 1})
    terms = agreement_for(document)
    hub.agree(terms)
    nodes = {
        a: make_node(hub, a, world[a], tmp_path, engine=engine, agreements=[terms])
        for a in ("CSDE", "DSS")
    }
    query = hub.submit(document)
    assert query["joiner"] == "CSDE"
    assert drive(hub, list(nodes.values()), query["id"])["status"] == "released"
    expected = run_tally(parse_spec(document), world, engine=engine)
    members = nodes["CSDE"].store.members(query["id"])
    assert members == match_members(expected) and members
    table = hub.result(query["id"])["table"]
    assert table == expected.result.released.to_dict()
    assert table["total"]["count"] == len(members)
    assert nodes["DSS"].store.members(query["id"]) == []
    dumped = json.dumps(hub.client.get("/v1/audit", headers=hub.auditor).json())
    assert not any(m in dumped for m in members)


def test_expired_leases_are_offered_again_and_exhaustion_fails_the_query(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    dcf = bearer(nodes[0].token, "DCF")
    first = hub.client.post("/v1/node/tasks/claim", json={"wait_seconds": 0}, headers=dcf).json()
    assert first["task"]["kind"] == "start"
    again = hub.client.post("/v1/node/tasks/claim", json={"wait_seconds": 0}, headers=dcf).json()
    assert again["task"] is None  # leased, not yet expired
    for attempt in (2, 3):
        hub.clock.advance(31)
        lease = hub.client.post("/v1/node/tasks/claim", json={"wait_seconds": 0}, headers=dcf)
        task = lease.json()["task"]
        assert (
            task["id"] == first["task"]["id"]
            and task["lease_token"] != first["task"]["lease_token"]
        )
        with hub.db.transaction() as session:
            row = session.get(Task, task["id"])
            assert row is not None and row.attempts == attempt
    stale = hub.client.post(
        f"/v1/node/tasks/{task['id']}/complete",
        json={"lease_token": first["task"]["lease_token"]},
        headers=dcf,
    )
    assert stale.status_code == 409 and "no longer leased" in stale.json()["error"]["message"]
    hub.clock.advance(31)
    sweep_once(hub.client.app.state.hub)  # type: ignore[attr-defined]
    status = hub.query(query["id"])
    assert status["status"] == "failed"
    assert "start step at DCF: no result after 3 leases" in status["error"]


def test_a_restarted_node_gives_up_its_leases_at_once(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = pair(hub, world, engine, tmp_path)
    hub.submit(CROSSOVER)
    dcf = bearer(nodes[0].token, "DCF")
    first = hub.client.post("/v1/node/tasks/claim", json={"wait_seconds": 0}, headers=dcf).json()
    again = hub.client.post(
        "/v1/node/tasks/claim", json={"wait_seconds": 0, "fresh_start": True}, headers=dcf
    ).json()
    assert again["task"]["id"] == first["task"]["id"]


@pytest.mark.sqlite_only
def test_a_held_task_runs_after_the_stewards_approval(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=[terms])
    jj = make_node(
        hub, "JBCSSD", world["JBCSSD"], tmp_path, engine=engine, agreements=[], on_unlisted="hold"
    )
    query = hub.submit(CROSSOVER)
    status = drive(hub, [dcf, jj], query["id"])
    assert (
        status["status"] == "held" and status["progress"]["phase"] == "awaiting approval at JBCSSD"
    )
    (held,) = jj.store.held()
    assert held.reason == "JBCSSD has not signed agreement DSA-2024-007"
    assert jj.store.decide(query["id"], approve=True, steward="sam")
    assert drive(hub, [dcf, jj], query["id"])["status"] == "released"
    actions = [e["action"] for e in hub.client.get("/v1/audit", headers=hub.auditor).json()]
    assert "task.held" in actions and "task.approved" in actions


@pytest.mark.sqlite_only
def test_a_held_task_rejected_by_the_steward_fails_the_query(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=[terms])
    jj = make_node(
        hub, "JBCSSD", world["JBCSSD"], tmp_path, engine=engine, agreements=[], on_unlisted="hold"
    )
    query = hub.submit(CROSSOVER)
    drive(hub, [dcf, jj], query["id"])
    jj.store.decide(query["id"], approve=False, steward="sam", reason="no DSA on file")
    status = drive(hub, [dcf, jj], query["id"])
    assert status["status"] == "failed"
    assert status["error"] == "refused by JBCSSD's data steward sam: no DSA on file"


@pytest.mark.sqlite_only
def test_a_tampered_relay_blob_is_refused_by_its_recipient(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    assert dcf.worker.run_once(wait=0)  # DCF's rows are now in the mailbox for JB-CSSD
    with hub.db.transaction() as session:
        blob = session.scalars(select(Blob)).one()
        flipped = bytearray(blob.envelope)
        flipped[len(flipped) // 2] ^= 1
        session.execute(update(Blob).where(Blob.id == blob.id).values(envelope=bytes(flipped)))
    status = drive(hub, [dcf, jj], query["id"])
    assert status["status"] == "failed"
    assert "envelope failed authentication" in status["error"]


def test_replayed_envelopes_are_refused_by_the_hub_or_the_recipient(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path)
    first, second = hub.submit(CROSSOVER), hub.submit(CROSSOVER)
    assert jj.worker.run_once(wait=0) and jj.worker.run_once(wait=0)  # rows:jj:1 of both
    tasks_before = hub.rows(Task)
    again = hub.client.put(
        f"/v1/node/mailbox/{first['id']}/rows:jj:1",
        content=b"again",
        headers=bearer(jj.token, "JBCSSD"),
    )
    assert again.status_code == 409 and "accepted once" in again.json()["error"]["message"]
    wrong = hub.client.put(
        f"/v1/node/mailbox/{first['id']}/rows:dcf:1",
        content=b"x",
        headers=bearer(jj.token, "JBCSSD"),
    )
    assert wrong.status_code == 403 and "must come from DCF" in wrong.json()["error"]["message"]
    assert hub.rows(Task) == tasks_before
    # A relay that replays the first query's envelope into the second: DCF cannot open it.
    with hub.db.transaction() as session:
        blobs = {b.query_id: b for b in session.scalars(select(Blob))}
        replayed = blobs[first["id"]].envelope
        session.execute(
            update(Blob).where(Blob.id == blobs[second["id"]].id).values(envelope=replayed)
        )
    assert drive(hub, [dcf, jj], first["id"])["status"] == "released"
    status = drive(hub, [dcf, jj], second["id"])
    assert status["status"] == "failed"
    assert "forward step at DCF failed: envelope failed authentication" in status["error"]


@pytest.mark.sqlite_only
def test_a_tally_with_a_bad_signature_changes_nothing(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    forged = hub.client.post(
        f"/v1/node/queries/{query['id']}/tally",
        content=b"CTLY1forged",
        headers={**bearer(jj.token, "JBCSSD"), SIGNATURE_HEADER: "AAAA"},
    )
    assert forged.status_code == 400
    assert "signature does not verify" in forged.json()["error"]["message"]
    not_joiner = hub.client.post(
        f"/v1/node/queries/{query['id']}/tally",
        content=b"x",
        headers={**bearer(dcf.token, "DCF"), SIGNATURE_HEADER: "AAAA"},
    )
    assert not_joiner.status_code == 403
    assert hub.query(query["id"])["status"] == "running"
    assert drive(hub, [dcf, jj], query["id"])["status"] == "released"


def test_results_go_only_to_named_analysts_and_the_public_sees_no_counts(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    drive(hub, nodes, query["id"])
    stranger = bearer(hub.token("eve", "analyst"))
    response = hub.client.get(f"/v1/queries/{query['id']}/result", headers=stranger)
    # Worded exactly as for a missing query: a stranger learns nothing of its existence.
    missing = hub.client.get(f"/v1/queries/{'f' * 32}/result", headers=stranger)
    assert response.status_code == missing.status_code == 404
    assert f"no query {query['id']}" in response.text
    assert hub.client.get(f"/v1/queries/{query['id']}", headers=stranger).status_code == 404
    public = hub.client.get("/v1/transparency").json()
    (entry,) = public["queries"]
    assert entry["name"] == "crossover-youth" and entry["status"] == "released"
    assert "count" not in json.dumps(public) and "where" not in json.dumps(public)


def test_cancelling_destroys_the_key_and_the_relay(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    dcf.worker.run_once(wait=0)
    assert hub.rows(Blob) == 1
    response = hub.client.post(f"/v1/queries/{query['id']}/cancel", headers=hub.operator)
    assert response.json()["status"] == "cancelled"
    assert hub.rows(Blob) == 0
    with hub.db.transaction() as session:
        row = session.get(Query, query["id"])
        assert row is not None and row.sealed_private_key is None
    jj.worker.run_once(wait=0)
    dcf.worker.run_once(wait=0)
    assert dcf.store.holding() == []
