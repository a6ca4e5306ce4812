"""Test harness: a hub on an ASGI test client, and agency nodes that run in-process."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from crosstally.templates import load_template
from protocol.blinding import CurveEngine, make_engine
from protocol.driver import NodeData
from protocol.envelope import PartyKeys
from protocol.spec import QuerySpec, parse_spec
from services.agency_node.config import NodeSettings
from services.agency_node.hub_client import HubClient
from services.agency_node.steps import StepRunner
from services.agency_node.store import NodeStore
from services.agency_node.worker import Worker
from services.governance import terms_for_spec
from services.hub.store.base import Base
from services.hub.store.db import Database
from services.wire import DEFAULT_PART_BYTES, NODE_HEADER, AgreementTerms

AS_OF = "2026-06-30"
ADMIN_TOKEN = "test-admin-token-" + "x" * 32
VALID_FROM = dt.date(2024, 1, 1)
VALID_UNTIL = dt.date(2030, 12, 31)
ANALYST = "ana"


@dataclass
class MutableClock:
    """A clock tests move by hand (lease expiry, agreement windows)."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


def template_spec(name: str, **changes: Any) -> dict[str, Any]:
    return {**load_template(name), "as_of": AS_OF, **changes}


def agreement_for(
    document: Mapping[str, Any], *, analysts: Sequence[str] = (ANALYST,), **changes: Any
) -> AgreementTerms:
    spec = parse_spec(document)
    terms = terms_for_spec(spec, analysts=analysts, valid_from=VALID_FROM, valid_until=VALID_UNTIL)
    return terms.model_copy(update=changes)


def bearer(token: str, node: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if node is not None:
        headers[NODE_HEADER] = node
    return headers


ADMIN = bearer(ADMIN_TOKEN)


class HubHarness:
    """A hub behind a TestClient, with helpers for the administrator's and operator's chores."""

    def __init__(self, client: TestClient, clock: MutableClock) -> None:
        self.client = client
        self.clock = clock
        self._tokens: dict[str, str] = {}

    def token(self, name: str, role: str) -> str:
        if name not in self._tokens:
            r = self.client.post(
                "/v1/admin/credentials", json={"name": name, "role": role}, headers=ADMIN
            )
            assert r.status_code == 201, r.text
            self._tokens[name] = r.json()["token"]
        return self._tokens[name]

    @property
    def operator(self) -> dict[str, str]:
        return bearer(self.token("olga", "operator"))

    @property
    def analyst(self) -> dict[str, str]:
        return bearer(self.token(ANALYST, "analyst"))

    @property
    def auditor(self) -> dict[str, str]:
        return bearer(self.token("audrey", "auditor"))

    def enroll(self, agency: str, keys: PartyKeys) -> str:
        public = keys.public
        body = {
            "agency": agency,
            "box_key": base64.b64encode(public.box_key).decode(),
            "verify_key": base64.b64encode(public.verify_key).decode(),
        }
        r = self.client.post("/v1/admin/nodes", json=body, headers=ADMIN)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    def agree(self, terms: AgreementTerms) -> None:
        r = self.client.post(
            "/v1/admin/agreements", json=terms.model_dump(mode="json"), headers=ADMIN
        )
        assert r.status_code == 201, r.text

    def submit(self, document: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
        r = self.client.post(
            "/v1/queries", json={"spec": dict(document), **extra}, headers=self.operator
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    def query(self, query_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/queries/{query_id}", headers=self.operator)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    def result(self, query_id: str) -> dict[str, Any]:
        r = self.client.get(f"/v1/queries/{query_id}/result", headers=self.analyst)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    @property
    def db(self) -> Database:
        db = self.client.app.state.hub.db  # type: ignore[attr-defined]
        assert isinstance(db, Database)
        return db

    def rows(self, model: type[Base]) -> int:
        """How many rows a table holds (to show that a refused request changed nothing)."""
        with self.db.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model)) or 0)

    def node_http(self, agency: str, token: str) -> TestClient:
        """A second client on the same app (no second lifespan) carrying the node's headers."""
        client = TestClient(self.client.app, base_url="http://testserver")
        client.headers.update(bearer(token, agency))
        return client


@dataclass
class InProcessNode:
    """An agency node without its HTTP admin app: the worker drives steps through the hub."""

    agency: str
    keys: PartyKeys
    token: str
    store: NodeStore
    worker: Worker


def make_node(
    hub: HubHarness,
    agency: str,
    data: NodeData,
    directory: Path,
    *,
    engine: CurveEngine,
    agreements: Sequence[AgreementTerms],
    on_unlisted: str = "refuse",
    keys: PartyKeys | None = None,
    token: str | None = None,
    part_bytes: int = DEFAULT_PART_BYTES,
) -> InProcessNode:
    """Enroll (unless a token is given) and assemble a node whose store lives in `directory`."""
    keys = keys or PartyKeys.generate()
    token = token or hub.enroll(agency, keys)
    settings = NodeSettings(
        environment="development",
        agency=agency,
        hub_url="http://testserver",
        credential=token,
        keys_file=directory / "unused.keys",
        data_dir=directory / agency,
        extract={"path": directory / "unused.csv"},
        agreements=list(agreements),
        poll_seconds=0,
        heartbeat_seconds=30,
        on_unlisted=on_unlisted,
    )
    store = NodeStore(settings.store_path)
    runner = StepRunner(
        agency,
        list(data.records),
        list(data.columns),
        keys=keys,
        store=store,
        engines=lambda curve: engine if curve == engine.name else _other_engine(curve),
        spool=settings.spool_dir,
        part_bytes=part_bytes,
    )
    client = HubClient(
        "http://testserver",
        agency=agency,
        token=token,
        retry_seconds=1,
        client=hub.node_http(agency, token),
    )
    worker = Worker(
        settings=settings, client=client, runner=runner, store=store, signing_key=keys.sign
    )
    return InProcessNode(agency, keys, token, store, worker)


_ENGINES: dict[str, CurveEngine] = {}


def _other_engine(curve: str) -> CurveEngine:
    """Engines for curves other than the session's, kept for the test session."""
    if curve not in _ENGINES:
        _ENGINES[curve] = make_engine(curve, 1)
    return _ENGINES[curve]


def drive(
    hub: HubHarness, nodes: Sequence[InProcessNode], query_id: str, rounds: int = 200
) -> dict[str, Any]:
    """Let every node work until the query ends or nobody has anything left to do."""
    idle = 0
    for _ in range(rounds):
        worked = [n.worker.run_once(wait=0) for n in nodes]
        status = hub.query(query_id)
        if status["status"] in ("released", "failed", "cancelled"):
            for n in nodes:  # one more claim each, so nodes hear that the query ended
                n.worker.run_once(wait=0)
            return status
        idle = 0 if any(worked) else idle + 1
        if idle >= 3:
            return status
        time.sleep(0)
    raise AssertionError(f"query {query_id} still running after {rounds} rounds")


def spec_of(document: Mapping[str, Any]) -> QuerySpec:
    return parse_spec(document)
