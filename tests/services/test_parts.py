"""Row sets through the relay in sealed parts, on SQLite and PostgreSQL: the same table as in
one piece; parts kept until their step is done; a relay that reorders, relabels or mixes
parts is caught by the recipient; the hub's rules for parts and uploads."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select, update

from protocol.blinding import P256Engine
from protocol.driver import NodeData, run_tally
from protocol.spec import parse_spec
from services.hub.audit.service import size_bucket
from services.hub.mailbox.models import Blob
from services.hub.tasks.models import Task
from services.wire import PARTS_HEADER, UPLOAD_HEADER
from tests.services.harness import HubHarness, InProcessNode, bearer, drive
from tests.services.test_flow import CROSSOVER, pair

SMALL_PARTS = 4 << 10  # the test world's row sets go in a dozen parts or more


def _files(node: InProcessNode, tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / node.agency / "spool").rglob("*") if p.is_file()]


def _parts_of(hub: HubHarness, step: str) -> list[Blob]:
    with hub.db.transaction() as session:
        blobs = session.scalars(select(Blob).where(Blob.step == step).order_by(Blob.part))
        return [b for b in blobs]


def test_row_sets_in_many_parts_release_the_same_table(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path, part_bytes=SMALL_PARTS)
    query = hub.submit(CROSSOVER)
    assert dcf.worker.run_once(wait=0)  # start: DCF's rows wait at the hub for JB-CSSD
    held = _parts_of(hub, "rows:dcf:1")
    assert len(held) > 3 and {b.parts for b in held} == {len(held)}
    assert len({b.upload for b in held}) == 1 and all(b.size <= SMALL_PARTS + 300 for b in held)
    assert jj.worker.run_once(wait=0)  # JB-CSSD's own start
    assert jj.worker.run_once(wait=0)  # forward of DCF's rows: done with them, the hub drops them
    assert _parts_of(hub, "rows:dcf:1") == [] and len(_parts_of(hub, "rows:dcf:2")) > 3
    again = hub.client.put(
        f"/v1/node/mailbox/{query['id']}/rows:dcf:1",
        content=b"late copy",
        params={"part": 0, "parts": 1, "upload": "ff"},
        headers=bearer(dcf.token, "DCF"),
    )
    assert again.status_code == 409 and "accepted once" in again.text  # though its parts are gone
    status = drive(hub, [dcf, jj], query["id"])
    assert status["status"] == "released", status
    expected = run_tally(parse_spec(CROSSOVER), world, engine=engine).result.released
    assert hub.result(query["id"])["table"] == expected.to_dict()
    audit = hub.client.get("/v1/audit", headers=hub.auditor).json()
    stored = [e["detail"] for e in audit if e["action"] == "relay.stored"]
    assert len(stored) == 4 and all(d["parts"] > 3 and "bytes" not in d for d in stored)
    logged = {e.step: e for n in (dcf, jj) for e in n.store.outbound() if e.kind == "rows"}
    # The audit keeps sizes only coarsely (exact bytes give row counts): the node's bucket.
    assert {s: size_bucket(e.bytes) for s, e in logged.items()} == {
        d["step"]: d["size"] for d in stored
    }
    # Nothing of the query is left on disk at either node, nor at the hub.
    assert _files(dcf, tmp_path) == [] and _files(jj, tmp_path) == []
    assert hub.rows(Blob) == 0


@pytest.mark.sqlite_only
def test_the_recipient_refuses_parts_the_relay_reordered(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path, part_bytes=SMALL_PARTS)
    query = hub.submit(CROSSOVER)
    assert dcf.worker.run_once(wait=0)
    first, second = _parts_of(hub, "rows:dcf:1")[:2]
    with hub.db.transaction() as session:  # each part is intact, but in the other's place
        session.execute(update(Blob).where(Blob.id == first.id).values(envelope=second.envelope))
        session.execute(update(Blob).where(Blob.id == second.id).values(envelope=first.envelope))
    status = drive(hub, [dcf, jj], query["id"])
    assert status["status"] == "failed"
    assert "envelope failed authentication" in status["error"]
    assert _files(jj, tmp_path) == []  # what it had opened is gone


@pytest.mark.sqlite_only
def test_the_recipient_refuses_parts_relabelled_as_another_upload_or_count(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path, part_bytes=SMALL_PARTS)
    first, second = hub.submit(CROSSOVER), hub.submit(CROSSOVER)
    assert dcf.worker.run_once(wait=0) and dcf.worker.run_once(wait=0)
    with hub.db.transaction() as session:
        session.execute(update(Blob).where(Blob.query_id == first["id"]).values(upload="abc"))
        # The second query's row set, one part short: the relay says it had one part fewer.
        parts = session.scalars(select(Blob).where(Blob.query_id == second["id"])).all()
        last = max(parts, key=lambda b: b.part)
        session.delete(last)
        session.execute(
            update(Blob).where(Blob.query_id == second["id"]).values(parts=len(parts) - 1)
        )
    for query in (first, second):
        status = drive(hub, [dcf, jj], query["id"])
        assert status["status"] == "failed"
        assert "envelope failed authentication" in status["error"]


def test_the_hub_queues_the_recipient_when_the_last_part_of_one_upload_is_in(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    dcf, jj = pair(hub, world, engine, tmp_path)
    query = hub.submit(CROSSOVER)
    path = f"/v1/node/mailbox/{query['id']}/rows:dcf:1"
    as_dcf, as_jj = bearer(dcf.token, "DCF"), bearer(jj.token, "JBCSSD")

    def put(part: int, parts: int, upload: str, body: bytes = b"sealed") -> dict[str, object]:
        params = {"part": part, "parts": parts, "upload": upload}
        response = hub.client.put(path, content=body, params=params, headers=as_dcf)
        return {"status": response.status_code, **response.json()}

    def forwards() -> int:
        with hub.db.transaction() as session:
            return len(session.scalars(select(Task).where(Task.kind == "forward")).all())

    receipt = put(1, 3, "aa", b"part one")
    assert receipt["status"] == 201 and receipt["complete"] is False and forwards() == 0
    assert "already relayed" in str(put(1, 3, "aa")["error"])
    assert "has 3 parts, not 2" in str(put(0, 2, "aa")["error"])
    assert "part 0 to parts - 1" in str(put(3, 3, "aa")["error"])
    assert put(0, 0, "aa")["status"] == 422
    assert hub.client.get(path, params={"part": 1}, headers=as_jj).status_code == 404
    # A new upload (the sender re-ran its step) replaces the unfinished one.
    assert put(1, 2, "bb", b"second run, part one")["complete"] is False
    assert [(b.part, b.upload) for b in _parts_of(hub, "rows:dcf:1")] == [(1, "bb")]
    receipt = put(0, 2, "bb", b"second run, part zero")
    assert receipt["complete"] is True and forwards() == 1
    assert "accepted once" in str(put(0, 2, "cc")["error"])
    fetched = hub.client.get(path, params={"part": 1}, headers=as_jj)
    assert fetched.content == b"second run, part one"
    assert fetched.headers[PARTS_HEADER] == "2" and fetched.headers[UPLOAD_HEADER] == "bb"
    assert hub.client.get(path, params={"part": 0}, headers=as_dcf).status_code == 404
    audit = hub.client.get("/v1/audit", headers=hub.auditor).json()
    (stored,) = [e["detail"] for e in audit if e["action"] == "relay.stored"]
    assert stored["parts"] == 2 and stored["size"] == "under 1 KiB" and "bytes" not in stored
