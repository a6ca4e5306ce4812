"""The N-party tally: hub, agency node and joiner steps, each from messages to messages.

1. `HubTally` makes the query's Paillier key pair and one `TallyTask` per node.
2. `TallyNode.start` selects, deduplicates and blinds its cohorts' rows and encrypts
   their group-code shares; `TallyNode.forward` applies its secret to another
   party's rows, re-randomizes their ciphertexts and shuffles them.
3. `Joiner` links the fully blinded rows, evaluates the population and sums each
   entity's ciphertexts; `HubTally.finish` decrypts and applies disclosure control.
"""

from __future__ import annotations

import random
import secrets
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from protocol.blinding import CurveEngine
from protocol.cohort import PreparedCohort, WhereClause, prepare_cohort
from protocol.disclosure import ReleasedTable, protect
from protocol.errors import MalformedMessage, ProtocolStateError
from protocol.groups import (
    ABSENT,
    TOTAL_LABEL,
    GroupLayout,
    absent_contribution,
    build_layout,
    cell_index,
    cell_labels,
    contribution,
    decode_code,
)
from protocol.linkage.keys import fill_slots
from protocol.linkage.link import LinkResult, LinkSettings, link_cohorts
from protocol.messages import POINT_SIZE, EncryptedTally, RowSet
from protocol.paillier import (
    Ciphertext,
    Encryptor,
    PrivateKey,
    PublicKey,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
    generate_keypair,
    sum_ciphertexts,
)
from protocol.records import PersonRecord
from protocol.setexpr import Population, parse_population
from protocol.spec import QuerySpec

MAX_COUNT = (1 << 32) - 1
Shuffler = Callable[[str, int], list[int]]


def system_shuffle(_: str, n: int) -> list[int]:
    """A uniformly random permutation from the OS's CSPRNG."""
    order = list(range(n))
    random.SystemRandom().shuffle(order)
    return order


@dataclass(frozen=True)
class TallyTask:
    """What the hub sends every node for one tally: public, the same for everybody."""

    query_id: str
    spec: QuerySpec
    public_key: PublicKey
    ring: tuple[str, ...]
    joiner: str

    @property
    def population(self) -> Population:
        return parse_population(self.spec.population, self.spec.cohorts)

    def layout(self) -> GroupLayout:
        return build_layout(
            self.spec, self.population, n_bits=self.public_key.n_bits, max_count=MAX_COUNT
        )

    def keeps_order(self, cohort: str) -> bool:
        """Only a match keeps the requester's rows in order, so the requester can read them."""
        return self.spec.kind == "match" and cohort == self.spec.requester

    def next_hop(self, rows: RowSet) -> str:
        """Where a row set goes next: the next party still to apply its secret, else the joiner."""
        origin = rows.applied[0]
        start = self.ring.index(origin)
        for step in range(1, len(self.ring)):
            party = self.ring[(start + step) % len(self.ring)]
            if party not in rows.applied:
                return party
        return self.joiner


@dataclass(frozen=True)
class Outgoing:
    """A message and the party it is addressed to."""

    to: str
    rows: RowSet


def _validate_task_rows(task: TallyTask, rows: RowSet) -> None:
    if rows.query_id != task.query_id:
        raise ProtocolStateError(f"row set belongs to query {rows.query_id}, not {task.query_id}")
    if rows.cohort not in task.spec.cohorts or not rows.applied:
        raise MalformedMessage(f"row set names unknown cohort {rows.cohort!r} or no origin")
    if rows.applied[0] != task.spec.cohorts[rows.cohort].node:
        raise MalformedMessage(f"row set for {rows.cohort!r} did not start at its own node")
    if rows.slots != task.spec.linkage.keys.slots:
        raise MalformedMessage(
            f"row set has {rows.slots} slots; the key profile has {task.spec.linkage.keys.slots}"
        )
    expected_width = task.layout().width(rows.cohort)
    if rows.width != expected_width or (
        rows.width and rows.cipher_bytes != task.public_key.ciphertext_bytes
    ):
        raise MalformedMessage(f"row set for {rows.cohort!r} carries the wrong ciphertext layout")


class TallyNode:
    """An agency node's part in one tally; it holds its records and a fresh secret."""

    def __init__(
        self,
        name: str,
        records: Sequence[PersonRecord],
        columns: Sequence[str],
        *,
        engine: CurveEngine,
        shuffle: Shuffler = system_shuffle,
    ) -> None:
        self.name = name
        self.records = records
        self.columns = columns
        self.engine = engine
        self.shuffle = shuffle
        self._secrets: dict[str, bytes] = {}
        self._encryptors: dict[str, Encryptor] = {}
        self.prepared: dict[str, PreparedCohort] = {}

    def _secret(self, task: TallyTask) -> bytes:
        return self._secrets.setdefault(task.query_id, self.engine.new_secret())

    def _encryptor(self, task: TallyTask) -> Encryptor:
        if task.query_id not in self._encryptors:
            self._encryptors[task.query_id] = Encryptor(task.public_key)
        return self._encryptors[task.query_id]

    def forget(self, query_id: str) -> None:
        """Destroy the query's secret and encryptor (end of query)."""
        self._secrets.pop(query_id, None)
        self._encryptors.pop(query_id, None)

    def start(self, task: TallyTask) -> list[Outgoing]:
        """Blind and encrypt this node's cohorts; rows leave shuffled."""
        layout = task.layout()
        out = []
        for cohort in task.spec.cohorts_of(self.name):
            where = WhereClause(cohort.where, self.columns, as_of=task.spec.as_of)
            prepared = prepare_cohort(
                cohort.label, self.records, where=where, profile=task.spec.linkage.keys
            )
            self.prepared[cohort.label] = prepared
            items = [t for row in prepared.slots for t in fill_slots(row)]
            points = self.engine.hash_and_blind(self._secret(task), items)
            plaintexts = [
                contribution(layout, cohort.label, p, task.spec) for p in prepared.persons
            ]
            width = layout.width(cohort.label)
            flat = [m for row in plaintexts for m in row]
            ciphers = self._encryptor(task).encrypt_many(flat) if flat else []
            rows = _pack(
                task, cohort.label, (self.name,), points, ciphers, len(prepared.persons), width
            )
            out.append(Outgoing("", self._shuffled(rows, task)))
        return [Outgoing(task.next_hop(o.rows), o.rows) for o in out]

    def forward(self, task: TallyTask, rows: RowSet) -> Outgoing:
        """Apply this node's secret to another party's rows, re-randomize, shuffle."""
        _validate_task_rows(task, rows)
        if self.name in rows.applied:
            raise ProtocolStateError(f"{self.name} already applied its secret to {rows.cohort!r}")
        if task.next_hop(rows) != self.name:
            raise ProtocolStateError(
                f"row set for {rows.cohort!r} reached {self.name} out of ring order"
            )
        points = self.engine.blind(self._secret(task), rows.point_list())
        ciphers = ciphertexts_from_bytes(rows.ciphertexts, task.public_key) if rows.width else []
        ciphers = self._encryptor(task).rerandomize_many(ciphers) if ciphers else []
        moved = _pack(
            task, rows.cohort, (*rows.applied, self.name), points, ciphers, rows.rows, rows.width
        )
        moved = self._shuffled(moved, task)
        return Outgoing(task.next_hop(moved), moved)

    def _shuffled(self, rows: RowSet, task: TallyTask) -> RowSet:
        if task.keeps_order(rows.cohort):
            return rows
        order = self.shuffle(f"{self.name}:{rows.cohort}", rows.rows)
        return _permute(rows, order)


def _pack(
    task: TallyTask,
    cohort: str,
    applied: tuple[str, ...],
    points: Sequence[bytes],
    ciphers: Sequence[Ciphertext],
    rows: int,
    width: int,
) -> RowSet:
    return RowSet(
        query_id=task.query_id,
        cohort=cohort,
        applied=applied,
        rows=rows,
        slots=task.spec.linkage.keys.slots,
        width=width,
        cipher_bytes=task.public_key.ciphertext_bytes,
        points=b"".join(points),
        ciphertexts=ciphertexts_to_bytes(ciphers) if ciphers else b"",
    )


def _permute(rows: RowSet, order: Sequence[int]) -> RowSet:
    if sorted(order) != list(range(rows.rows)):
        raise ProtocolStateError("a shuffle must be a permutation of the rows")
    pw = rows.slots * POINT_SIZE
    cw = rows.width * rows.cipher_bytes
    points = b"".join(rows.points[i * pw : (i + 1) * pw] for i in order)
    ciphers = b"".join(rows.ciphertexts[i * cw : (i + 1) * cw] for i in order) if cw else b""
    return RowSet(rows.query_id, rows.cohort, rows.applied, rows.rows, rows.slots, rows.width,
                  rows.cipher_bytes, points, ciphers)  # fmt: skip


def token_ids(points: bytes, rows: int, slots: int) -> np.ndarray:
    """64-bit ids of blinded points: 8 bytes of the x coordinate, which is pseudorandom."""
    raw = np.frombuffer(points, dtype=np.uint8).reshape(rows * slots, POINT_SIZE)
    ids = raw[:, 1:9].copy().view(">i8").astype(np.int64).reshape(rows, slots)
    return ids


@dataclass
class Joiner:
    """Links fully blinded rows of every cohort and sums ciphertexts per entity."""

    task: TallyTask
    shuffle: Shuffler = system_shuffle
    received: dict[str, RowSet] = field(default_factory=dict)
    link_result: LinkResult | None = None

    def receive(self, rows: RowSet) -> None:
        _validate_task_rows(self.task, rows)
        if set(rows.applied) != set(self.task.ring):
            raise ProtocolStateError(f"row set for {rows.cohort!r} is missing some party's secret")
        if rows.cohort in self.received:
            raise ProtocolStateError(f"row set for {rows.cohort!r} arrived twice (replay?)")
        self.received[rows.cohort] = rows

    @property
    def ready(self) -> bool:
        return set(self.received) == set(self.task.spec.cohorts)

    def link(self) -> LinkResult:
        ids = {c: token_ids(r.points, r.rows, r.slots) for c, r in self.received.items()}
        settings = LinkSettings(threshold=self.task.spec.linkage.threshold)
        self.link_result = link_cohorts(
            ids,
            self.task.spec.linkage.keys.group_slices,
            self.task.spec.linkage.keys.comparison,
            settings=settings,
        )
        return self.link_result

    def members(self, cohort: str) -> list[int]:
        """Rows of `cohort` linked to some row of another cohort (match: requester only)."""
        if self.task.spec.kind != "match" or cohort != self.task.spec.requester:
            raise ProtocolStateError(
                "membership is only revealed to the requester of a match query"
            )
        result = self.link_result or self.link()
        return sorted(e[cohort] for e in result.entities if cohort in e and len(e) > 1)

    def finish(self) -> EncryptedTally:
        if not self.ready:
            missing = sorted(set(self.task.spec.cohorts) - set(self.received))
            raise ProtocolStateError(f"joiner is still waiting for cohorts: {', '.join(missing)}")
        result = self.link_result or self.link()
        population = self.task.population
        chosen = [e for e in result.entities if population.contains(set(e))]
        layout = self.task.layout()
        pk = self.task.public_key
        if layout.mode == "count":
            return EncryptedTally(self.task.query_id, "count", 0, b"", len(chosen))
        encryptor = Encryptor(pk)
        ciphers = {
            c: ciphertexts_from_bytes(r.ciphertexts, pk) if r.width else []
            for c, r in self.received.items()
        }
        if layout.mode == "onehot":
            out = self._sum_onehot(layout, chosen, ciphers, encryptor)
        else:
            out = self._codes(layout, chosen, ciphers, encryptor)
        body = ciphertexts_to_bytes(out)
        return EncryptedTally(
            self.task.query_id, layout.mode, pk.ciphertext_bytes, body, len(chosen)
        )

    def _sum_onehot(
        self,
        layout: GroupLayout,
        chosen: list[dict[str, int]],
        ciphers: Mapping[str, list[Ciphertext]],
        encryptor: Encryptor,
    ) -> list[Ciphertext]:
        assert layout.packing is not None and layout.owner is not None
        width = layout.packing.ciphertexts
        owner_rows = ciphers[layout.owner]
        absent = 0
        totals: list[list[Ciphertext]] = [[] for _ in range(width)]
        for entity in chosen:
            row = entity.get(layout.owner)
            if row is None:
                absent += 1
                continue
            for k in range(width):
                totals[k].append(owner_rows[row * width + k])
        sums = [sum_ciphertexts(t, self.task.public_key) for t in totals]
        if absent:
            labels = (ABSENT,) * len(layout.terms)  # every term is the owner's
            plain = layout.packing.encode(cell_index(layout, labels))
            sums = [s.add_plain(p * absent) for s, p in zip(sums, plain, strict=True)]
        return encryptor.rerandomize_many(sums)

    def _codes(
        self,
        layout: GroupLayout,
        chosen: list[dict[str, int]],
        ciphers: Mapping[str, list[Ciphertext]],
        encryptor: Encryptor,
    ) -> list[Ciphertext]:
        carriers = layout.carriers()
        out = []
        for entity in chosen:
            parts = [ciphers[c][row] for c, row in entity.items() if c in carriers]
            total = sum_ciphertexts(parts, self.task.public_key)
            out.append(total.add_plain(absent_contribution(layout, set(entity))))
        order = self.shuffle("joiner", len(out))
        return encryptor.rerandomize_many([out[i] for i in order])


@dataclass(frozen=True)
class TallyResult:
    """The hub's decrypted histogram and the disclosure-controlled table it may release."""

    query_id: str
    dimensions: tuple[str, ...]
    histogram: dict[tuple[str, ...], int]
    population: int
    released: ReleasedTable


class HubTally:
    """The hub's side of one tally: key pair, tasks, decryption, disclosure control."""

    def __init__(
        self,
        spec: QuerySpec,
        *,
        joiner: str | None = None,
        query_id: str | None = None,
        keypair: tuple[PublicKey, PrivateKey] | None = None,
    ) -> None:
        self.spec = spec
        self.query_id = query_id or uuid.uuid4().hex
        self.public_key, self._private_key = keypair or generate_keypair()
        ring = tuple(spec.nodes())
        if spec.kind == "match":
            requester = spec.cohorts[spec.requester or ""].node
            if joiner not in (None, requester):
                raise ProtocolStateError("in a match query the requester's node is the joiner")
            joiner = requester
        self.task = TallyTask(self.query_id, spec, self.public_key, ring, joiner or ring[-1])
        self.layout = self.task.layout()

    def finish(self, message: EncryptedTally) -> TallyResult:
        if message.query_id != self.query_id or message.mode != self.layout.mode:
            raise ProtocolStateError("the encrypted tally belongs to another query or layout")
        histogram: dict[tuple[str, ...], int] = {}
        if self.layout.mode == "count":
            histogram[(TOTAL_LABEL,)] = message.population
        else:
            ciphers = ciphertexts_from_bytes(message.ciphertexts, self.public_key)
            if self.layout.mode == "onehot":
                assert self.layout.packing is not None
                counts = self.layout.packing.decode([self._private_key.decrypt(c) for c in ciphers])
                for index, count in enumerate(counts):
                    if count:
                        histogram[cell_labels(self.layout, index)] = count
            else:
                for c in ciphers:
                    key = decode_code(self.layout, self._private_key.decrypt(c))
                    histogram[key] = histogram.get(key, 0) + 1
        self._private_key.destroy()
        released = protect(
            histogram,
            dimensions=self.layout.dimensions,
            levels=self.layout.levels,
            min_cell=self.spec.min_cell,
            rounding=self.spec.rounding,
        )
        return TallyResult(
            self.query_id, self.layout.dimensions, histogram, message.population, released
        )


def new_query_id() -> str:
    return secrets.token_hex(16)
