"""Amending an agreement (issue 18): a new agreement that supersedes the old one, audited;
no query runs under the old one afterwards, at the hub or at a node that holds the new."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from services.agency_node.review import review
from services.hub.audit.models import AuditEntry
from tests.services.harness import (
    ADMIN,
    AS_OF,
    HubHarness,
    agreement_for,
    drive,
    make_node,
    template_spec,
)

pytestmark = pytest.mark.sqlite_only  # the node's and the hub's rules, not its SQL

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})


def under(agreement: str) -> dict[str, Any]:
    return {**CROSSOVER, "agreement": agreement}


def test_an_amendment_supersedes_the_old_agreement_at_the_hub_and_is_audited(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    old = agreement_for(CROSSOVER)
    hub.agree(old)
    new = old.model_copy(
        update={"id": f"{old.id}-A1", "analysts": [*old.analysts, "ben"], "supersedes": old.id}
    )
    hub.agree(new)
    r = hub.client.post("/v1/queries", json={"spec": under(old.id)}, headers=hub.operator)
    assert r.status_code == 403, r.text
    assert f"superseded by agreement {new.id}" in r.json()["error"]["message"]
    nodes = [
        make_node(hub, a, world[a], tmp_path, engine=engine, agreements=[new])
        for a in ("DCF", "JBCSSD")
    ]
    query = hub.submit(under(new.id))
    assert drive(hub, nodes, query["id"])["status"] == "released"
    with hub.db.transaction() as session:
        amended = [e.detail for e in session.query(AuditEntry) if e.action == "agreement.amended"]
    assert amended == [
        {"agreement": new.id, "participants": new.participants, "supersedes": old.id}
    ]


def test_an_amendment_of_a_missing_or_already_amended_agreement_is_refused(
    hub: HubHarness,
) -> None:
    old = agreement_for(CROSSOVER)
    stray = old.model_copy(update={"id": "DSA-NEW", "supersedes": "DSA-NOWHERE"})
    r = hub.client.post("/v1/admin/agreements", json=stray.model_dump(mode="json"), headers=ADMIN)
    assert r.status_code == 404 and "DSA-NOWHERE, which is not on file" in r.text
    hub.agree(old)
    hub.agree(old.model_copy(update={"id": "DSA-A1", "supersedes": old.id}))
    again = old.model_copy(update={"id": "DSA-A2", "supersedes": old.id})
    r = hub.client.post("/v1/admin/agreements", json=again.model_dump(mode="json"), headers=ADMIN)
    assert r.status_code == 409 and "already superseded by DSA-A1; amend DSA-A1" in r.text
    # Recording the old id again says how to amend instead.
    r = hub.client.post("/v1/admin/agreements", json=old.model_dump(mode="json"), headers=ADMIN)
    assert r.status_code == 409
    assert f'"supersedes": "{old.id}"' in r.json()["error"]["message"]


def test_a_node_holding_the_amendment_refuses_the_old_agreement() -> None:
    old = agreement_for(CROSSOVER)
    new = old.model_copy(update={"id": f"{old.id}-A1", "supersedes": old.id})
    from protocol.spec import parse_spec

    spec = parse_spec(under(old.id))
    decision = review(
        spec, agency="DCF", agreements=[old, new], on_unlisted="hold", approved=True, today=AS_OF
    )
    assert decision.verdict == "refuse"
    assert f"superseded by agreement {new.id}" in decision.reason
