"""A data steward's decisions at a node: a bad one never stops the node, an ended query's
held task says so (issue 18, bugs 1 and 10)."""

from __future__ import annotations

from pathlib import Path

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from tests.services.harness import HubHarness, agreement_for, drive, make_node, template_spec

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
