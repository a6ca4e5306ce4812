"""Running one protocol step for a leased task: start, forward or join, sealed in parts."""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from protocol.blinding import CurveEngine
from protocol.envelope import EnvelopeError, PartyKeys, PublicParty, open_sealed, seal
from protocol.errors import ProtocolStateError
from protocol.messages import RowSet
from protocol.paillier import PublicKey
from protocol.records import PersonRecord
from protocol.spec import parse_spec
from protocol.tally import Joiner, Outgoing, TallyNode, TallyTask
from services.agency_node.hub_client import SealedPart
from services.agency_node.store import NodeStore
from services.wire import (
    DEFAULT_PART_BYTES,
    MAX_PARTS,
    UPLOAD_PATTERN,
    NodeTask,
    parse_step,
    part_context,
    step_name,
)

FetchPart = Callable[[int], SealedPart]


@dataclass(frozen=True)
class Transfer:
    """A row set on its way to the relay; it is sealed part by part as it is pushed."""

    step: str
    recipient: str
    rows: RowSet

    def discard(self) -> None:
        """Close and delete the spool file the rows live in, once they are pushed."""
        _discard(self.rows)


def _discard(rows: RowSet) -> None:
    path = rows.spool_path
    rows.close()
    if path is not None:
        path.unlink(missing_ok=True)


@dataclass(frozen=True)
class TallyOut:
    """The joiner's encrypted tally for the hub, and (match only) how many records it matched."""

    body: bytes
    ciphertexts: int
    matched: int | None = None


def tally_task(task: NodeTask) -> TallyTask:
    """The protocol's public task from a leased node task."""
    return TallyTask(
        query_id=task.query_id,
        spec=parse_spec(task.spec),
        public_key=PublicKey.from_bytes(base64.b64decode(task.public_key)),
        ring=tuple(task.ring),
        joiner=task.joiner,
    )


def _party(task: NodeTask, agency: str) -> PublicParty:
    keys = task.parties.get(agency)
    if keys is None:
        raise ProtocolStateError(f"the task names no enrolled keys for {agency}")
    return PublicParty(base64.b64decode(keys.box_key), base64.b64decode(keys.verify_key))


class StepRunner:
    """One node's protocol state across tasks; secrets live in the store, not only in memory."""

    def __init__(
        self,
        agency: str,
        records: list[PersonRecord],
        columns: list[str],
        *,
        keys: PartyKeys,
        store: NodeStore,
        engines: Callable[[str], CurveEngine],
        spool: Path,
        part_bytes: int = DEFAULT_PART_BYTES,
    ) -> None:
        self.agency = agency
        self.records = records
        self.columns = columns
        self.keys = keys
        self.store = store
        self.engines = engines
        self.part_bytes = part_bytes
        # Row sets in flight live in files here, never whole in memory; a restart leaves
        # only the joiner's kept rows (under joiner/) worth keeping.
        self.spool = spool
        spool.mkdir(mode=0o700, parents=True, exist_ok=True)
        for stale in [*spool.glob("rows-*.ctly"), *spool.glob("in-*.ctly")]:
            stale.unlink(missing_ok=True)
        self._nodes: dict[str, TallyNode] = {}

    def node(self, task: TallyTask) -> TallyNode:
        """This agency's protocol party for the curve the query names (`linkage.curve`)."""
        curve = task.spec.linkage.curve
        if curve not in self._nodes:
            engine = self.engines(curve)
            self._nodes[curve] = TallyNode(
                self.agency, self.records, self.columns, engine=engine, spool=self.spool
            )
        return self._nodes[curve]

    def _ready(self, task: TallyTask) -> TallyNode:
        """Restore the query's secret, or create it and persist it before its first use."""
        node = self.node(task)
        state = self.store.query_state(task.query_id)
        if state is None:
            secret, encryptor_state = node.export_state(task)
            self.store.save_query_state(task.query_id, secret, encryptor_state)
            state = self.store.query_state(task.query_id)
            assert state is not None
        node.restore(task, *state)
        return node

    def _transfer(self, out: Outgoing) -> Transfer:
        return Transfer(step_name(out.rows.cohort, len(out.rows.applied)), out.to, out.rows)

    def sealed_parts(self, leased: NodeTask, transfer: Transfer) -> Iterator[SealedPart]:
        """The transfer's wire frame in parts of at most `part_bytes`, each sealed to the
        recipient and bound to its place among the parts of this run (a fresh upload id)."""
        count = max(1, -(-transfer.rows.frame_size() // self.part_bytes))
        upload = secrets.token_hex(16)
        recipient = _party(leased, transfer.recipient)
        for index, plain in enumerate(transfer.rows.frame_parts(self.part_bytes)):
            context = part_context(transfer.step, part=index, parts=count, upload=upload)
            envelope = seal(
                plain,
                sender=self.agency,
                keys=self.keys,
                recipient=transfer.recipient,
                to=recipient,
                query_id=leased.query_id,
                step=context,
            )
            yield SealedPart(index, count, upload, envelope)

    def _receive(self, leased: NodeTask, fetch: FetchPart) -> RowSet:
        """Fetch, open and spool every part of the task's input; the row set reads from disk."""
        step = leased.input_step or ""
        sender = leased.input_sender or ""
        frm = _party(leased, sender)
        first = fetch(0)
        count, upload = first.count, first.upload
        if not 1 <= count <= MAX_PARTS or not re.fullmatch(UPLOAD_PATTERN, upload):
            raise EnvelopeError(f"the relay gave step {step} an impossible part count or upload")
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (closed below, kept on success)
            dir=self.spool, prefix="in-", suffix=".ctly", delete=False
        )
        path = Path(handle.name)
        try:
            with handle:
                for index in range(count):
                    part = first if index == 0 else fetch(index)
                    if (part.count, part.upload) != (count, upload):
                        raise EnvelopeError(f"part {index} of step {step} is from another upload")
                    handle.write(
                        open_sealed(
                            part.envelope,
                            sender=sender,
                            frm=frm,
                            recipient=self.agency,
                            keys=self.keys,
                            query_id=leased.query_id,
                            step=part_context(step, part=index, parts=count, upload=upload),
                        )
                    )
            rows = RowSet.from_file(path)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if parse_step(step) != (rows.cohort, len(rows.applied)):
            _discard(rows)
            raise ProtocolStateError(f"relayed rows do not match their step {step}")
        return rows

    def start(self, leased: NodeTask) -> list[Transfer]:
        task = tally_task(leased)
        node = self._ready(task)
        outs = node.start(task)
        if task.spec.kind == "match":
            # The requester keeps its own row order; remember which records each row holds.
            for cohort in task.spec.cohorts_of(self.agency):
                if cohort.label == task.spec.requester:
                    persons = node.prepared[cohort.label].persons
                    ids = [[r.record_id for r in person] for person in persons]
                    self.store.save_match_rows(task.query_id, cohort.label, ids)
        return [self._transfer(o) for o in outs]

    def forward(self, leased: NodeTask, fetch: FetchPart) -> Transfer:
        """Apply this node's secret to the relayed rows; the caller pushes and discards."""
        task = tally_task(leased)
        rows = self._receive(leased, fetch)
        try:
            node = self._ready(task)
            return self._transfer(node.forward(task, rows))
        finally:
            _discard(rows)

    def join(self, leased: NodeTask, fetch: FetchPart) -> TallyOut | None:
        """Keep a fully blinded row set; once every cohort is in, link and tally."""
        task = tally_task(leased)
        rows = self._receive(leased, fetch)
        joiner = Joiner(task)
        try:
            joiner.receive(rows)  # validates before anything is kept
        except BaseException:
            _discard(rows)
            raise
        try:
            # Keep the file for the later join steps (the open row set reads on after the
            # rename), then take in the cohorts that earlier steps kept.
            received = rows.spool_path
            assert received is not None
            kept = self._joiner_dir(task.query_id) / f"{rows.cohort}.ctly"
            os.replace(received, kept)
            self.store.save_joiner_rows(task.query_id, rows.cohort, kept)
            for cohort, path in self.store.joiner_rows(task.query_id).items():
                if cohort != rows.cohort:
                    joiner.receive(RowSet.from_file(path))
            return self._finish(task, joiner)
        finally:
            for kept_rows in joiner.received.values():
                kept_rows.close()

    def _finish(self, task: TallyTask, joiner: Joiner) -> TallyOut | None:
        if not joiner.ready:
            return None
        matched = None
        if task.spec.kind == "match" and task.spec.requester:
            persons = self.store.match_rows(task.query_id, task.spec.requester)
            if persons is None:
                raise ProtocolStateError("the requester's row map is missing; rerun the query")
            members = sorted(r for row in joiner.members(task.spec.requester) for r in persons[row])
            self.store.save_members(task.query_id, members)
            matched = len(members)
        tally = joiner.finish()
        body = tally.to_bytes()
        cipher_count = len(tally.ciphertexts) // tally.cipher_bytes if tally.cipher_bytes else 0
        return TallyOut(body, cipher_count, matched)

    def _joiner_dir(self, query_id: str) -> Path:
        path = self.spool / "joiner" / query_id
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path

    def forget(self, query_id: str) -> None:
        for node in self._nodes.values():
            node.forget(query_id)
            node.prepared.clear()
        self.store.forget(query_id)
        shutil.rmtree(self.spool / "joiner" / query_id, ignore_errors=True)
