"""The hub's API on SQLite and PostgreSQL: roles, enrollment, agreements, refusals that change
nothing, the relay's rules, body limits, the audit chain and the public summary."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from typing import Any

import pytest
from sqlalchemy import select, update

from protocol.envelope import PartyKeys
from services.hub.audit.models import AuditEntry
from services.hub.config import HubSettings
from services.hub.credentials.models import Credential
from services.hub.mailbox.models import Blob
from services.hub.queries.models import Query
from services.hub.tasks.models import Task
from tests.services.conftest import running_hub
from tests.services.harness import (
    ADMIN,
    ADMIN_TOKEN,
    HubHarness,
    agreement_for,
    bearer,
    template_spec,
)

CROSSOVER = template_spec("crossover-youth")


def enrolled(hub: HubHarness, *agencies: str) -> dict[str, str]:
    return {a: hub.enroll(a, PartyKeys.generate()) for a in agencies}


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return str(body["message"])


def test_every_route_but_health_and_transparency_needs_a_credential(hub: HubHarness) -> None:
    schema = hub.client.get("/openapi.json").json()
    public = {"/healthz", "/v1/transparency"}
    for path, operations in schema["paths"].items():
        for method in operations:
            url = path.replace("{query_id}", "a" * 32).replace("{step}", "rows:a:1")
            url = url.replace("{agency}", "DCF").replace("{agreement_id}", "X")
            url = url.replace("{task_id}", "1").replace("{credential_id}", "1")
            response = hub.client.request(method.upper(), url)
            if path in public:
                assert response.status_code == 200, path
            else:
                assert response.status_code in (401, 422), (method, path, response.text)
                if response.status_code == 401:
                    assert response.json()["error"]["code"] == "not_authenticated"


def test_unknown_revoked_and_wrong_role_credentials_are_refused(hub: HubHarness) -> None:
    message = error(hub.client.get("/v1/queries", headers=bearer("nope")), 401, "not_authenticated")
    assert "unknown or revoked credential" in message
    analyst = hub.analyst
    message = error(
        hub.client.post("/v1/queries", json={"spec": CROSSOVER}, headers=analyst), 403, "forbidden"
    )
    assert message == "analyst credentials cannot do this; it needs operator"
    error(
        hub.client.post(
            "/v1/admin/credentials", json={"name": "x", "role": "admin"}, headers=hub.operator
        ),
        403,
        "forbidden",
    )
    listed = hub.client.get("/v1/admin/credentials", headers=ADMIN).json()
    credential_id = next(c["id"] for c in listed if c["name"] == "olga")
    assert (
        hub.client.post(f"/v1/admin/credentials/{credential_id}/revoke", headers=ADMIN).status_code
        == 200
    )
    error(hub.client.get("/v1/queries", headers=hub.operator), 401, "not_authenticated")


def test_node_credentials_work_only_as_their_own_node(hub: HubHarness) -> None:
    tokens = enrolled(hub, "DCF")
    claim = {"wait_seconds": 0}
    ok = hub.client.post("/v1/node/tasks/claim", json=claim, headers=bearer(tokens["DCF"], "DCF"))
    assert ok.status_code == 200 and ok.json() == {"task": None, "ended": []}
    message = error(
        hub.client.post("/v1/node/tasks/claim", json=claim, headers=bearer(tokens["DCF"], "DSS")),
        403,
        "forbidden",
    )
    assert "belongs to node DCF" in message
    error(
        hub.client.post("/v1/node/tasks/claim", json=claim, headers=hub.operator), 403, "forbidden"
    )
    error(hub.client.get("/v1/queries", headers=bearer(tokens["DCF"])), 403, "forbidden")
    deactivated = hub.client.post("/v1/admin/nodes/DCF/deactivate", headers=ADMIN)
    assert deactivated.json()["active"] is False
    error(
        hub.client.post("/v1/node/tasks/claim", json=claim, headers=bearer(tokens["DCF"], "DCF")),
        401,
        "not_authenticated",
    )


def test_enrollment_keys_are_checked_and_unique(hub: HubHarness) -> None:
    enrolled(hub, "DCF")
    keys = PartyKeys.generate().public
    body = {
        "agency": "DCF",
        "box_key": base64.b64encode(keys.box_key).decode(),
        "verify_key": base64.b64encode(keys.verify_key).decode(),
    }
    error(hub.client.post("/v1/admin/nodes", json=body, headers=ADMIN), 409, "conflict")
    short = {**body, "agency": "DSS", "box_key": base64.b64encode(b"x" * 31).decode()}
    message = error(
        hub.client.post("/v1/admin/nodes", json=short, headers=ADMIN), 422, "invalid_request"
    )
    assert "32 bytes" in message


def test_secrets_are_stored_only_as_hashes(hub: HubHarness) -> None:
    token = hub.token("olga", "operator")
    node_token = enrolled(hub, "DCF")["DCF"]
    with hub.db.transaction() as session:
        rows = list(session.scalars(select(Credential)))
    hashes = {r.token_hash for r in rows}
    assert hashlib.sha256(token.encode()).hexdigest() in hashes
    assert hashlib.sha256(node_token.encode()).hexdigest() in hashes
    for row in rows:
        assert token not in repr(row.__dict__) and node_token not in repr(row.__dict__)


def test_placeholder_secrets_are_refused_outside_development() -> None:
    with pytest.raises(ValueError, match="ADMIN_TOKEN is missing or a placeholder"):
        HubSettings(environment="production", admin_token="changeme", key_encryption_key="")
    with pytest.raises(ValueError, match="KEY_ENCRYPTION_KEY is missing"):
        HubSettings(environment="production", admin_token="k" * 40)
    assert HubSettings(environment="development", admin_token="changeme").kek()


def test_agreements_are_validated_and_immutable(hub: HubHarness) -> None:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    error(
        hub.client.post("/v1/admin/agreements", json=terms.model_dump(mode="json"), headers=ADMIN),
        409,
        "conflict",
    )
    bad = {**terms.model_dump(mode="json"), "id": "DSA-BAD", "valid_until": "2020-01-01"}
    message = error(
        hub.client.post("/v1/admin/agreements", json=bad, headers=ADMIN), 422, "invalid_request"
    )
    assert "valid_until is before valid_from" in message
    listed = hub.client.get("/v1/agreements", headers=hub.analyst).json()
    assert [a["id"] for a in listed] == [terms.id]


def _nothing_changed(hub: HubHarness) -> None:
    assert hub.rows(Query) == 0 and hub.rows(Task) == 0 and hub.rows(Blob) == 0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"valid_from": dt.date(2020, 1, 1), "valid_until": dt.date(2021, 1, 1)},
            "agreement DSA-2024-007 expired on 2021-01-01",
        ),
        (
            {"valid_from": dt.date(2099, 1, 1), "valid_until": dt.date(2099, 2, 1)},
            "agreement DSA-2024-007 is not in force until 2099-01-01",
        ),
        ({"kinds": ["count"]}, "permits count queries, not tally"),
        ({"group_by": ["dcf.sex"]}, "does not permit grouping by dcf.ethnicity"),
        (
            {"contributions": {"DCF": ["placed"], "JBCSSD": ["juvenile_cases", "first_contact"]}},
            "does not let DCF contribute",
        ),
        ({"min_cell": 20}, "min_cell 11 is below agreement DSA-2024-007's minimum of 20"),
    ],
)
def test_a_query_outside_its_agreement_is_refused_and_changes_nothing(
    hub: HubHarness, changes: dict[str, Any], expected: str
) -> None:
    enrolled(hub, "DCF", "JBCSSD")
    hub.agree(agreement_for(CROSSOVER, **changes))
    response = hub.client.post("/v1/queries", json={"spec": CROSSOVER}, headers=hub.operator)
    assert expected in error(response, 403, "agreement_violation")
    _nothing_changed(hub)
    audit = hub.client.get("/v1/audit", headers=ADMIN).json()
    assert audit[-1]["action"] == "query.rejected" and expected in audit[-1]["detail"]["reason"]


def test_unknown_nodes_agreements_and_bad_specs_get_clear_errors(hub: HubHarness) -> None:
    def submit(spec: dict[str, Any]) -> Any:
        return hub.client.post("/v1/queries", json={"spec": spec}, headers=hub.operator)

    message = error(submit(CROSSOVER), 403, "agreement_violation")
    assert message.startswith("no agreement DSA-2024-007 is on file")
    hub.agree(agreement_for(CROSSOVER))
    enrolled(hub, "DCF")
    message = error(submit(CROSSOVER), 422, "invalid_request")
    assert message == "node(s) JBCSSD are not enrolled or not active"
    message = error(submit({**CROSSOVER, "kind": "histogram"}), 422, "invalid_spec")
    assert "spec.kind 'histogram' is not one of count, tally, match" in message
    error(
        hub.client.post("/v1/queries", json={"spec": CROSSOVER, "extra": 1}, headers=hub.operator),
        422,
        "invalid_request",
    )
    _nothing_changed(hub)


def test_oversized_bodies_get_413_before_anything_is_read(database_url: str) -> None:
    with running_hub(database_url, max_json_bytes=2048, max_blob_bytes=4096) as small:
        client = small.client
        big = {"name": "x" * 5000, "role": "operator"}
        response = client.post("/v1/admin/credentials", json=big, headers=ADMIN)
        message = error(response, 413, "payload_too_large")
        assert "limit of 2,048 bytes" in message
        blob = client.put(
            f"/v1/node/mailbox/{'a' * 32}/rows:dcf:1",
            content=b"\0" * 5000,
            headers=bearer(ADMIN_TOKEN, "DCF"),
        )
        assert "limit of 4,096 bytes" in error(blob, 413, "payload_too_large")

        def chunks() -> Any:  # no Content-Length: the limit holds while the body streams
            for _ in range(10):
                yield b"\0" * 1000

        keys = PartyKeys.generate().public
        enroll = {
            "agency": "DCF",
            "box_key": base64.b64encode(keys.box_key).decode(),
            "verify_key": base64.b64encode(keys.verify_key).decode(),
        }
        token = client.post("/v1/admin/nodes", json=enroll, headers=ADMIN).json()["token"]
        streamed = client.put(
            f"/v1/node/mailbox/{'a' * 32}/rows:dcf:1",
            content=chunks(),
            headers=bearer(token, "DCF"),
        )
        error(streamed, 413, "payload_too_large")


def test_the_audit_chain_verifies_and_detects_tampering(hub: HubHarness) -> None:
    enrolled(hub, "DCF", "JBCSSD")
    hub.agree(agreement_for(CROSSOVER))
    hub.token("olga", "operator")
    check = hub.client.get("/v1/audit/verify", headers=hub.auditor).json()
    assert check["ok"] and check["entries"] >= 5
    with hub.db.transaction() as session:
        session.execute(update(AuditEntry).where(AuditEntry.seq == 2).values(actor="mallory"))
    check = hub.client.get("/v1/audit/verify", headers=hub.auditor).json()
    assert not check["ok"] and check["first_bad"] == 2 and "altered" in check["problem"]
    error(hub.client.get("/v1/audit/verify", headers=hub.operator), 403, "forbidden")


def test_the_audit_chain_detects_removed_entries(hub: HubHarness) -> None:
    enrolled(hub, "DCF", "JBCSSD", "DSS")
    with hub.db.transaction() as session:
        last = session.scalar(select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(1))
        assert last is not None
        session.delete(last)
    check = hub.client.get("/v1/audit/verify", headers=ADMIN).json()
    assert not check["ok"] and "removed" in check["problem"]
