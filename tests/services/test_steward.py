"""A data steward's decisions at a node: a bad one never stops the node, an ended query's
held task says so (issue 18, bugs 1 and 10)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from services.commands.node import app as node_cli
from tests.services.harness import HubHarness, agreement_for, drive, make_node, template_spec

pytestmark = pytest.mark.sqlite_only  # the node's and the hub's rules, not its SQL

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})
OTHER = template_spec("crossover-youth", agreement="DSA-2024-008", disclosure={"min_cell": 1})


def test_a_decision_the_hub_cannot_take_goes_back_to_the_steward_and_blocks_nothing(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    held_terms, signed_terms = agreement_for(CROSSOVER), agreement_for(OTHER)
    hub.agree(held_terms)
    hub.agree(signed_terms)
    both = [held_terms, signed_terms]
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=both)
    jj = make_node(
        hub,
        "JBCSSD",
        world["JBCSSD"],
        tmp_path,
        engine=engine,
        agreements=[signed_terms],
        on_unlisted="hold",
    )
    held = hub.submit(CROSSOVER)
    assert drive(hub, [dcf, jj], held["id"])["status"] == "held"
    # What an unchecked `node approve --steward "Jane Steward (JBCSSD)"` stored.
    assert jj.store.decide(held["id"], approve=True, steward="Jane Steward (JBCSSD)")

    other = hub.submit(OTHER)
    assert drive(hub, [dcf, jj], other["id"])["status"] == "released"
    (row,) = jj.store.held()
    assert row.decision == "pending" and row.steward is None
    assert "not allowed" in row.decision_reason and "decide again" in row.decision_reason
    assert jj.worker.status.last_error is not None and held["id"] in jj.worker.status.last_error

    assert jj.store.decide(held["id"], approve=True, steward="jane.steward")
    assert drive(hub, [dcf, jj], held["id"])["status"] == "released"


def test_a_held_task_of_a_query_another_steward_rejected_is_no_longer_pending(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    nodes = [
        make_node(hub, agency, world[agency], tmp_path, engine=engine, agreements=[],
                  on_unlisted="hold")
        for agency in ("DCF", "JBCSSD")
    ]  # fmt: skip
    dcf, jj = nodes
    hub.agree(agreement_for(CROSSOVER))  # on file at the hub, signed by neither node
    query = hub.submit(CROSSOVER)
    assert drive(hub, nodes, query["id"])["status"] == "held"
    assert [h.query_id for h in dcf.store.held()] == [query["id"]]
    assert query["id"] in dcf.store.holding()  # so the hub can say when it ends

    assert jj.store.decide(query["id"], approve=False, steward="jj.steward", reason="no")
    assert drive(hub, nodes, query["id"])["status"] == "failed"
    (row,) = dcf.store.held()
    assert not row.pending and row.ended_at is not None and row.decision == "pending"
    assert dcf.store.held(include_ended=False) == []
    assert query["id"] not in dcf.store.holding()

    config = _node_toml(tmp_path, "DCF")
    runner = CliRunner()
    approved = runner.invoke(node_cli, ["approve", query["id"], "-c", str(config),
                                        "--steward", "dcf.steward"])  # fmt: skip
    assert approved.exit_code == 1
    assert "no longer pending" in approved.output and "approved" not in approved.output
    assert not dcf.store.approved(query["id"])
    listed = runner.invoke(node_cli, ["held", "-c", str(config)])
    assert listed.exit_code == 0 and query["id"] not in listed.output
    assert "1 held query ended" in listed.output
    everything = runner.invoke(node_cli, ["held", "--all", "-c", str(config)])
    assert query["id"] in everything.output and "no longer pending" in everything.output


def test_a_decision_sent_after_the_query_ended_is_marked_so_at_the_node(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    """The steward approved before the node heard that the query ended: the hub refuses the
    decision, and the node's held list then says the query ended rather than 'approved'."""
    nodes = [
        make_node(hub, agency, world[agency], tmp_path, engine=engine, agreements=[],
                  on_unlisted="hold")
        for agency in ("DCF", "JBCSSD")
    ]  # fmt: skip
    dcf, jj = nodes
    hub.agree(agreement_for(CROSSOVER))  # on file at the hub, signed by neither node
    query = hub.submit(CROSSOVER)
    assert drive(hub, nodes, query["id"])["status"] == "held"
    assert jj.store.decide(query["id"], approve=False, steward="jj.steward", reason="no")
    jj.worker.run_once(wait=0)
    assert hub.query(query["id"])["status"] == "failed"
    assert dcf.store.decide(query["id"], approve=True, steward="dcf.steward")
    dcf.worker.run_once(wait=0)
    (row,) = dcf.store.held()
    assert row.ended_at is not None and not row.pending
    r = dcf.worker.client.http.post(  # what the node sent: the hub's answer says why
        f"/v1/node/queries/{query['id']}/decision",
        json={"steward": "dcf.steward", "approve": True, "reason": ""},
    )
    assert r.status_code == 409
    assert "ended" in r.text and "refused by JBCSSD" in r.text


def _node_toml(tmp_path: Path, agency: str) -> Path:
    """A config the steward's CLI can read, on the in-process node's own store."""
    config = tmp_path / f"{agency.lower()}.toml"
    config.write_text(
        f'environment = "development"\nagency = "{agency}"\nhub_url = "http://testserver"\n'
        f'keys_file = "unused.keys"\ndata_dir = "{agency}"\n'
        f'[extract]\npath = "unused.csv"\n'
    )
    return config
