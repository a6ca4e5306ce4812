"""Running one protocol step for a leased task: start, forward or join, sealed for the relay."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass

from protocol.blinding import CurveEngine
from protocol.envelope import PartyKeys, PublicParty, open_sealed, seal
from protocol.errors import ProtocolStateError
from protocol.messages import RowSet
from protocol.paillier import PublicKey
from protocol.records import PersonRecord
from protocol.spec import parse_spec
from protocol.tally import Joiner, Outgoing, TallyNode, TallyTask
from services.agency_node.store import NodeStore
from services.wire import NodeTask, parse_step, step_name


@dataclass(frozen=True)
class Envelope:
    """A sealed row set ready for the relay, with what the outbound log records about it."""

    step: str
    recipient: str
    sealed: bytes
    rows: int


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
    ) -> None:
        self.agency = agency
        self.records = records
        self.columns = columns
        self.keys = keys
        self.store = store
        self.engines = engines
        self._nodes: dict[str, TallyNode] = {}

    def node(self, task: TallyTask) -> TallyNode:
        """This agency's protocol party for the curve the query names (`linkage.curve`)."""
        curve = task.spec.linkage.curve
        if curve not in self._nodes:
            engine = self.engines(curve)
            self._nodes[curve] = TallyNode(self.agency, self.records, self.columns, engine=engine)
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

    def _seal(self, leased: NodeTask, out: Outgoing) -> Envelope:
        step = step_name(out.rows.cohort, len(out.rows.applied))
        sealed = seal(
            out.rows.to_bytes(),
            sender=self.agency,
            keys=self.keys,
            recipient=out.to,
            to=_party(leased, out.to),
            query_id=leased.query_id,
            step=step,
        )
        return Envelope(step, out.to, sealed, out.rows.rows)

    def _open(self, leased: NodeTask, envelope: bytes) -> RowSet:
        step = leased.input_step or ""
        sender = leased.input_sender or ""
        plain = open_sealed(
            envelope,
            sender=sender,
            frm=_party(leased, sender),
            recipient=self.agency,
            keys=self.keys,
            query_id=leased.query_id,
            step=step,
        )
        rows = RowSet.from_bytes(plain)
        parsed = parse_step(step)
        if parsed != (rows.cohort, len(rows.applied)):
            raise ProtocolStateError(f"relayed rows do not match their step {step}")
        return rows

    def start(self, leased: NodeTask) -> list[Envelope]:
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
        return [self._seal(leased, o) for o in outs]

    def forward(self, leased: NodeTask, envelope: bytes) -> Envelope:
        task = tally_task(leased)
        rows = self._open(leased, envelope)
        node = self._ready(task)
        return self._seal(leased, node.forward(task, rows))

    def join(self, leased: NodeTask, envelope: bytes) -> TallyOut | None:
        """Keep a fully blinded row set; once every cohort is in, link and tally."""
        task = tally_task(leased)
        rows = self._open(leased, envelope)
        joiner = Joiner(task)
        joiner.receive(rows)  # validates before anything is stored
        self.store.save_joiner_rows(task.query_id, rows.cohort, rows.to_bytes())
        joiner = Joiner(task)
        for data in self.store.joiner_rows(task.query_id).values():
            joiner.receive(RowSet.from_bytes(data))
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

    def forget(self, query_id: str) -> None:
        for node in self._nodes.values():
            node.forget(query_id)
            node.prepared.clear()
        self.store.forget(query_id)
