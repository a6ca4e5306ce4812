"""The hub's smaller defences of issue 13, finding 6: nesting, body limits, failed-login rate
limit, unique credential names, and no existence leak through 403 vs 404."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient

from protocol.envelope import PartyKeys
from services.hub.errors import TooManyRequests
from services.hub.limits import FailureLimit
from tests.services.conftest import running_hub
from tests.services.harness import (
    ADMIN,
    ADMIN_TOKEN,
    HubHarness,
    agreement_for,
    bearer,
    template_spec,
)

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})
MISSING_QUERY = "0" * 32


def error(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return str(body["message"])


# A where nested deeply but within the length limit is a clear 422, never a RecursionError.


@pytest.mark.parametrize(
    "where", ["not " * 490 + "placed", "-" * 1900 + "1 > 0", "placed == " + "+" * 1900 + "1"]
)
def test_a_deep_where_within_the_length_limit_is_refused_as_too_deep(
    hub: HubHarness, where: str
) -> None:
    assert len(where) < 2000  # not refused for its length: for its depth
    hub.agree(agreement_for(CROSSOVER))
    cohorts = {**CROSSOVER["cohorts"], "dcf": {"node": "DCF", "where": where}}
    response = hub.client.post(
        "/v1/queries", json={"spec": {**CROSSOVER, "cohorts": cohorts}}, headers=hub.operator
    )
    message = error(response, 422, "invalid_spec")
    assert message == "cohort dcf's where clause nests more than 32 levels; simplify it"


def test_an_agreement_with_a_deep_where_is_refused_as_too_deep(hub: HubHarness) -> None:
    terms = agreement_for(CROSSOVER).model_dump(mode="json")
    terms["cohorts"]["dcf"]["where"] = "not " * 490 + "placed"
    response = hub.client.post("/v1/admin/agreements", json=terms, headers=ADMIN)
    assert "nests more than 32 levels" in error(response, 422, "invalid_request")


# Only the two blob routes take large bodies; every JSON route has the JSON limit.


def test_json_routes_under_the_node_prefix_get_the_json_limit(database_url: str) -> None:
    with running_hub(database_url, max_json_bytes=2048, max_blob_bytes=8192) as small:
        client = small.client
        node = bearer(ADMIN_TOKEN, "DCF")
        decision = {"steward": "sam", "approve": True, "reason": "x" * 4000}
        response = client.post(f"/v1/node/queries/{'a' * 32}/decision", json=decision, headers=node)
        assert "limit of 2,048 bytes" in error(response, 413, "payload_too_large")
        claim = {"holding": ["q" * 60] * 60}
        response = client.post("/v1/node/tasks/claim", json=claim, headers=node)
        assert "limit of 2,048 bytes" in error(response, 413, "payload_too_large")
        # The blob routes take more than the JSON limit (they then refuse the admin as a node).
        for method, path in (
            ("PUT", f"/v1/node/mailbox/{'a' * 32}/rows:dcf:1"),
            ("POST", f"/v1/node/queries/{'a' * 32}/tally"),
        ):
            response = client.request(method, path, content=b"\0" * 4000, headers=node)
            assert response.status_code == 403, response.text
            response = client.request(method, path, content=b"\0" * 9000, headers=node)
            assert "limit of 8,192 bytes" in error(response, 413, "payload_too_large")


def test_the_default_json_limit_is_one_mebibyte(hub: HubHarness) -> None:
    node = bearer(ADMIN_TOKEN, "DCF")
    big = {"steward": "sam", "approve": True, "reason": "x" * (2 << 20)}
    response = hub.client.post(f"/v1/node/queries/{'a' * 32}/decision", json=big, headers=node)
    assert "limit of 1,048,576 bytes" in error(response, 413, "payload_too_large")


# Failed authentications are rate limited per address.


def test_failed_authentications_are_rate_limited_per_address(database_url: str) -> None:
    with running_hub(database_url, auth_failure_burst=3, auth_failures_per_minute=6) as hub:
        limit = hub.client.app.state.auth_failures  # type: ignore[attr-defined]
        assert isinstance(limit, FailureLimit)
        now = [1000.0]
        limit.clock = lambda: now[0]
        for _ in range(30):  # good credentials never spend the bucket
            assert hub.client.get("/v1/agreements", headers=ADMIN).status_code == 200
        wrong = bearer("w" * 43)
        for _ in range(3):
            error(hub.client.get("/v1/agreements", headers=wrong), 401, "not_authenticated")
        response = hub.client.get("/v1/agreements", headers=wrong)
        message = error(response, 429, "too_many_requests")
        assert "too many failed authentications from this address; wait 10 s" in message
        assert response.headers["Retry-After"] == "10"
        # Refused before the credential is read: a right guess now learns nothing.
        error(hub.client.get("/v1/agreements", headers=ADMIN), 429, "too_many_requests")
        error(hub.client.get("/v1/agreements"), 429, "too_many_requests")  # and no credential
        node = bearer("w" * 43, "DCF")
        error(
            hub.client.post("/v1/node/tasks/claim", json={}, headers=node), 429, "too_many_requests"
        )
        # Another address is not affected.
        other = TestClient(hub.client.app, client=("10.1.2.3", 40000))
        assert other.get("/v1/agreements", headers=ADMIN).status_code == 200
        error(other.get("/v1/agreements", headers=wrong), 401, "not_authenticated")
        # One try comes back every 10 s (6 a minute).
        now[0] += 10
        assert hub.client.get("/v1/agreements", headers=ADMIN).status_code == 200
        error(hub.client.get("/v1/agreements", headers=wrong), 401, "not_authenticated")
        error(hub.client.get("/v1/agreements", headers=ADMIN), 429, "too_many_requests")


def test_a_token_bucket_refills_to_its_burst_and_no_further() -> None:
    now = [0.0]
    limit = FailureLimit(burst=2, per_minute=60, clock=lambda: now[0])
    limit.failed("a")
    limit.failed("a")
    with pytest.raises(TooManyRequests, match="wait 1 s"):
        limit.check("a")
    now[0] += 3600
    limit.check("a")
    limit.failed("a")
    limit.failed("a")
    with pytest.raises(TooManyRequests, match="too many failed"):
        limit.check("a")  # an hour's rest earned two tries, not 3,600
    limit.check("b")


# Credential names are unique among live credentials: agreements grant access by name.


def test_a_second_live_credential_with_the_same_name_is_refused(hub: HubHarness) -> None:
    def issue(name: str, role: str) -> Any:
        return hub.client.post(
            "/v1/admin/credentials", json={"name": name, "role": role}, headers=ADMIN
        )

    first = issue("ana", "analyst")
    assert first.status_code == 201
    for role in ("analyst", "operator"):
        message = error(issue("ana", role), 409, "conflict")
        assert f"a credential named 'ana' is already in use (id {first.json()['id']}" in message
        assert "choose another name" in message
    listed = hub.client.get("/v1/admin/credentials", headers=ADMIN).json()
    assert [c["name"] for c in listed].count("ana") == 1
    # Replacing it: revoke, then issue the name again.
    revoked = hub.client.post(f"/v1/admin/credentials/{first.json()['id']}/revoke", headers=ADMIN)
    assert revoked.status_code == 200
    assert issue("ana", "analyst").status_code == 201
    assert "bootstrap administrator" in error(issue("bootstrap-admin", "admin"), 409, "conflict")


# Another analyst's query looks exactly like a missing one.


def test_another_analysts_query_is_not_found_like_a_missing_one(hub: HubHarness) -> None:
    for agency in ("DCF", "JBCSSD"):
        keys = PartyKeys.generate().public
        body = {
            "agency": agency,
            "box_key": base64.b64encode(keys.box_key).decode(),
            "verify_key": base64.b64encode(keys.verify_key).decode(),
        }
        assert hub.client.post("/v1/admin/nodes", json=body, headers=ADMIN).status_code == 201
    hub.agree(agreement_for(CROSSOVER))
    query_id = hub.submit(CROSSOVER)["id"]
    outsider = bearer(hub.token("bob", "analyst"))
    for path in ("/v1/queries/{}/result", "/v1/queries/{}"):
        theirs = hub.client.get(path.format(query_id), headers=outsider)
        missing = hub.client.get(path.format(MISSING_QUERY), headers=outsider)
        assert theirs.status_code == missing.status_code == 404
        assert error(theirs, 404, "not_found") == f"no query {query_id}"
        assert error(missing, 404, "not_found") == f"no query {MISSING_QUERY}"
    # The analyst the agreement names is told the truth: it exists, not yet released.
    named = hub.client.get(f"/v1/queries/{query_id}/result", headers=hub.analyst)
    assert "has no released result yet" in error(named, 404, "not_found")
