"""Property-based API testing: schemathesis drives every operation of the hub's OpenAPI spec
(in-process, as the bootstrap admin and as an enrolled node) and must find no server error."""

from __future__ import annotations

import base64
import tempfile
from typing import Any

import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from protocol.envelope import PartyKeys
from services.hub.app import create_app
from tests.services.conftest import hub_settings
from tests.services.harness import ADMIN, agreement_for, bearer, template_spec

_DIRECTORY = tempfile.TemporaryDirectory(prefix="crosstally-schemathesis-")
app = create_app(hub_settings(f"sqlite:///{_DIRECTORY.name}/hub.sqlite"), background=False)


def _seed() -> str:
    """A migrated store with a node and an agreement, so generated requests reach real logic."""
    with TestClient(app) as client:
        keys = PartyKeys.generate().public
        body = {
            "agency": "DCF",
            "box_key": base64.b64encode(keys.box_key).decode(),
            "verify_key": base64.b64encode(keys.verify_key).decode(),
        }
        token = str(client.post("/v1/admin/nodes", json=body, headers=ADMIN).json()["token"])
        terms = agreement_for(template_spec("crossover-youth"))
        client.post("/v1/admin/agreements", json=terms.model_dump(mode="json"), headers=ADMIN)
    return token


NODE = bearer(_seed(), "DCF")
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_operation_answers_with_a_server_error(case: Any) -> None:
    headers = NODE if case.path.startswith("/v1/node/") else ADMIN
    case.call_and_validate(headers=headers, checks=[not_a_server_error])
