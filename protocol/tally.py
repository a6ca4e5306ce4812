"""The N-party tally: hub, agency node and joiner steps, each from messages to messages.

1. `HubTally` makes the query's Paillier key pair and one `TallyTask` per node.
2. `TallyNode.start` selects, deduplicates and blinds its cohorts' rows and encrypts
   their group-code shares; `TallyNode.forward` applies its secret to another
   party's rows, re-randomizes their ciphertexts and shuffles them.
3. `Joiner` links the fully blinded rows, evaluates the population and sums each
   entity's ciphertexts; `HubTally.finish` decrypts and applies disclosure control.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import secrets
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, overload

import numpy as np

from protocol.blinding import CHUNK, CURVE_FUNCTIONS, ENGINES, CurveEngine
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
from protocol.linkage.keys import KeyProfile
from protocol.linkage.link import LinkResult, LinkSettings, link_cohorts
from protocol.messages import POINT_SIZE, EncryptedTally, RowSet, frame_head, rowset_header_fields
from protocol.noise import DiscreteLaplace
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
from protocol.records import NormalizedPerson, PersonRecord
from protocol.setexpr import Population, parse_population
from protocol.spec import QuerySpec
from protocol.timing import Timings, timed
from protocol.workers import (
    derive_and_blind,
    encrypt_chunk,
    normalize_chunk,
    record_ids_chunk,
    rerandomize_chunk,
)

MAX_COUNT = (1 << 32) - 1
# A Paillier operation costs about as much as this many curve operations (inline or pool).
PAILLIER_WEIGHT = 5
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
        return self.hop_after(rows.applied)

    def hop_after(self, applied: Sequence[str]) -> str:
        """Where a row set goes once the parties in `applied` (its origin first) applied theirs."""
        start = self.ring.index(applied[0])
        for step in range(1, len(self.ring)):
            party = self.ring[(start + step) % len(self.ring)]
            if party not in applied:
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
    if rows.point_size != ENGINES[task.spec.linkage.curve].point_size:
        raise MalformedMessage(
            f"row set for {rows.cohort!r} carries {rows.point_size}-byte points; the query "
            f"uses {task.spec.linkage.curve}"
        )
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
        spool: Path | None = None,
    ) -> None:
        self.name = name
        self.records = records
        self.columns = columns
        self.engine = engine
        self.shuffle = shuffle
        self.spool = spool  # where row sets are written when they should not stay in memory
        self._secrets: dict[str, bytes] = {}
        self._encryptors: dict[str, Encryptor] = {}
        self.prepared: dict[str, PreparedCohort] = {}
        self.timings = Timings()

    def _check_curve(self, task: TallyTask) -> None:
        if self.engine.name != task.spec.linkage.curve:
            raise ProtocolStateError(
                f"node {self.name} runs the {self.engine.name} engine but the query uses "
                f"{task.spec.linkage.curve}; start the node with that curve"
            )

    def _secret(self, task: TallyTask) -> bytes:
        self._check_curve(task)
        return self._secrets.setdefault(task.query_id, self.engine.new_secret())

    def _encryptor(self, task: TallyTask) -> Encryptor:
        if task.query_id not in self._encryptors:
            self._encryptors[task.query_id] = Encryptor(task.public_key)
        return self._encryptors[task.query_id]

    def forget(self, query_id: str) -> None:
        """Destroy the query's secret and encryptor (end of query)."""
        self._secrets.pop(query_id, None)
        self._encryptors.pop(query_id, None)

    def export_state(self, task: TallyTask) -> tuple[bytes, bytes]:
        """The query's blinding secret and encryptor state, created now if this node has none.

        A node service persists both before the first step, so a restarted node blinds
        every later row set with the same secret (see `restore`).
        """
        return self._secret(task), self._encryptor(task).state()

    def restore(self, task: TallyTask, secret: bytes, encryptor_state: bytes) -> None:
        """Resume a query after a restart with the secret and state `export_state` gave."""
        self._secrets[task.query_id] = secret
        self._encryptors[task.query_id] = Encryptor.from_state(task.public_key, encryptor_state)

    def start(self, task: TallyTask) -> list[Outgoing]:
        """Blind and encrypt this node's cohorts; rows leave shuffled.

        Persons are visited in the shuffled order and their rows written as they come
        back from the worker pool, so the row set is never held twice (and never at all
        when the node spools to disk).
        """
        layout = task.layout()
        secret = self._secret(task)
        profile = task.spec.linkage.keys
        profile_json = json.dumps(profile.to_dict(), sort_keys=True)
        out = []
        for cohort in task.spec.cohorts_of(self.name):
            where = WhereClause(cohort.where, self.columns, as_of=task.spec.as_of)
            with timed(self.timings, "prepare"):
                prepared = self.prepare(cohort.label, where, profile)
            self.prepared[cohort.label] = prepared
            n = len(prepared.normalized)
            order = self._order(task, cohort.label, n)
            writer = RowWriter(
                self.spool,
                query_id=task.query_id,
                cohort=cohort.label,
                applied=(self.name,),
                rows=n,
                slots=profile.slots,
                width=layout.width(cohort.label),
                cipher_bytes=task.public_key.ciphertext_bytes,
                point_size=self.engine.point_size,
            )
            step = max(1, CHUNK // profile.slots)
            starts = range(0, n, step)
            chunks = (
                (
                    self.engine.name,
                    secret,
                    profile_json,
                    [prepared.normalized[i] for i in order[a : a + step]],
                )
                for a in starts
            )
            self.engine.count(n * profile.slots)
            with timed(self.timings, "curve"):
                for a, points in zip(
                    starts,
                    self.engine.map(derive_and_blind, chunks, weight=n * profile.slots),
                    strict=True,
                ):
                    writer.write_points(a, points)
            if writer.width:
                with timed(self.timings, "paillier"):
                    self._encrypt_rows(task, layout, prepared, order, writer)
            out.append(writer.finish())
        return [Outgoing(task.next_hop(rows), rows) for rows in out]

    def _encrypt_rows(
        self,
        task: TallyTask,
        layout: GroupLayout,
        prepared: PreparedCohort,
        order: Sequence[int],
        writer: RowWriter,
    ) -> None:
        step = max(1, CHUNK // 8 // writer.width)
        key, state = task.public_key.to_bytes(), self._encryptor(task).state()
        label = prepared.label
        starts = range(0, len(order), step)
        chunks = (
            (
                key,
                state,
                [
                    m
                    for i in order[a : a + step]
                    for m in contribution(layout, label, prepared.persons[i], task.spec)
                ],
            )
            for a in starts
        )
        weight = len(order) * writer.width * PAILLIER_WEIGHT
        for a, ciphers in zip(
            starts, self.engine.map(encrypt_chunk, chunks, weight=weight), strict=True
        ):
            writer.write_ciphertexts(a, ciphers)

    def forward(self, task: TallyTask, rows: RowSet) -> Outgoing:
        """Apply this node's secret to another party's rows, re-randomize, shuffle.

        The input is read in chunks and each blinded chunk written to its shuffled
        positions, so a spooled row set passes through with bounded memory. When the
        rows go next to this node itself, as the joiner, their ciphertexts are moved
        but not re-randomized: nobody else ever sees this hop's output, and the
        joiner re-randomizes every sum it sends the hub.
        """
        _validate_task_rows(task, rows)
        if self.name in rows.applied:
            raise ProtocolStateError(f"{self.name} already applied its secret to {rows.cohort!r}")
        if task.next_hop(rows) != self.name:
            raise ProtocolStateError(
                f"row set for {rows.cohort!r} reached {self.name} out of ring order"
            )
        order = self._order(task, rows.cohort, rows.rows)
        target = np.empty(rows.rows, dtype=np.int64)
        target[np.asarray(order, dtype=np.int64)] = np.arange(rows.rows, dtype=np.int64)
        applied = (*rows.applied, self.name)
        writer = RowWriter(
            self.spool,
            query_id=rows.query_id,
            cohort=rows.cohort,
            applied=applied,
            rows=rows.rows,
            slots=rows.slots,
            width=rows.width,
            cipher_bytes=rows.cipher_bytes,
            point_size=rows.point_size,
        )
        secret = self._secret(task)
        blind = CURVE_FUNCTIONS[self.engine.name].blind_packed
        step = max(1, CHUNK // rows.slots)
        starts = range(0, rows.rows, step)
        size = rows.row_point_bytes
        chunks = ((secret, bytes(rows.points[a * size : (a + step) * size])) for a in starts)
        self.engine.count(rows.rows * rows.slots)
        with timed(self.timings, "curve"):
            for a, points in zip(
                starts, self.engine.map(blind, chunks, weight=rows.rows * rows.slots), strict=True
            ):
                writer.write_points(target[a : a + step], points)
        to = task.hop_after(applied)
        if rows.width and to == self.name:
            self._move_ciphertexts(rows, target, writer)
        elif rows.width:
            with timed(self.timings, "paillier"):
                self._rerandomize_rows(task, rows, target, writer)
        return Outgoing(to, writer.finish())

    def _rerandomize_rows(
        self, task: TallyTask, rows: RowSet, target: np.ndarray, writer: RowWriter
    ) -> None:
        key, state = task.public_key.to_bytes(), self._encryptor(task).state()
        step = max(1, CHUNK // 8 // rows.width)
        starts = range(0, rows.rows, step)
        size = rows.row_cipher_bytes
        data = rows.ciphertexts
        chunks = ((key, state, bytes(data[a * size : (a + step) * size])) for a in starts)
        weight = rows.rows * rows.width * PAILLIER_WEIGHT
        for a, ciphers in zip(
            starts, self.engine.map(rerandomize_chunk, chunks, weight=weight), strict=True
        ):
            writer.write_ciphertexts(target[a : a + step], ciphers)

    @staticmethod
    def _move_ciphertexts(rows: RowSet, target: np.ndarray, writer: RowWriter) -> None:
        size = rows.row_cipher_bytes
        for a in range(0, rows.rows, CHUNK):
            writer.write_ciphertexts(
                target[a : a + CHUNK], bytes(rows.ciphertexts[a * size : (a + CHUNK) * size])
            )

    def _order(self, task: TallyTask, cohort: str, n: int) -> list[int]:
        """The shuffle a row set leaves this node in: output row k is input row order[k]."""
        if task.keeps_order(cohort):
            return list(range(n))
        with timed(self.timings, "shuffle"):
            order = self.shuffle(f"{self.name}:{cohort}", n)
            if len(order) != n or (
                n and not np.array_equal(np.sort(np.asarray(order, dtype=np.int64)), np.arange(n))
            ):
                raise ProtocolStateError("a shuffle must be a permutation of the rows")
            return list(order)

    def prepare(self, label: str, where: WhereClause, profile: KeyProfile) -> PreparedCohort:
        """`prepare_cohort` on this node's records, normalizing and keying in the worker pool."""
        return prepare_cohort(
            label,
            self.records,
            where=where,
            profile=profile,
            normalize=self._normalize,
            record_ids=self._record_ids,
        )

    def _normalize(self, records: Sequence[PersonRecord], as_of: dt.date) -> list[NormalizedPerson]:
        step = CHUNK // 4
        chunks = ((records[i : i + step], as_of) for i in range(0, len(records), step))
        return [
            p
            for part in self.engine.map(normalize_chunk, chunks, weight=len(records) * 4)
            for p in part
        ]

    def _record_ids(self, persons: Sequence[NormalizedPerson], profile: KeyProfile) -> np.ndarray:
        """`record_token_ids` of every record, derived in the worker pool."""
        step = CHUNK // 4
        profile_json = json.dumps(profile.to_dict(), sort_keys=True)
        chunks = ((profile_json, persons[i : i + step], i) for i in range(0, len(persons), step))
        parts = list(self.engine.map(record_ids_chunk, chunks, weight=len(persons) * profile.slots))
        if not parts:
            return np.empty((0, profile.slots), dtype=np.int64)
        return np.concatenate(parts)


class RowWriter:
    """A row set of known shape written by rows: in memory, or straight into a spool file.

    With `spool` set, the frame goes to a new file in that directory and the finished
    row set reads its body back from disk on demand (see `FileRange`); the caller
    removes the file once the row set has been consumed.
    """

    def __init__(self, spool: Path | None, **header: Any) -> None:
        self.header = rowset_header_fields(**header)
        self.rows, self.width = self.header["rows"], self.header["width"]
        self.point_bytes = self.header["slots"] * self.header["point_size"]
        self.cipher_bytes = self.width * self.header["cipher_bytes"]
        self._file: IO[bytes] | None = None
        if spool is None:
            self._points = np.zeros((self.rows, self.point_bytes), dtype=np.uint8)
            self._ciphers = np.zeros((self.rows, self.cipher_bytes), dtype=np.uint8)
            return
        self._points = self._ciphers = np.zeros((0, 0), dtype=np.uint8)
        head = frame_head(self.header)
        handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 (the row set keeps it open)
            dir=spool, prefix="rows-", suffix=".ctly", delete=False
        )
        handle.write(head)
        handle.flush()
        self._file, self._body = handle, len(head)
        handle.truncate(self._body + self.rows * (self.point_bytes + self.cipher_bytes))

    def write_points(self, at: int | np.ndarray, data: bytes) -> None:
        """Points of consecutive rows from `at`, or of the rows at positions `at`."""
        self._write(self._points, 0, self.point_bytes, at, data)

    def write_ciphertexts(self, at: int | np.ndarray, data: bytes) -> None:
        self._write(self._ciphers, self.rows * self.point_bytes, self.cipher_bytes, at, data)

    def _write(
        self, table: np.ndarray, offset: int, size: int, at: int | np.ndarray, data: bytes
    ) -> None:
        count = len(data) // size if size else 0
        if size * count != len(data) or (not isinstance(at, int) and len(at) != count):
            raise ProtocolStateError("a worker returned a chunk of the wrong size")
        if self._file is None:
            block = np.frombuffer(data, dtype=np.uint8).reshape(count, size)
            if isinstance(at, int):
                table[at : at + count] = block
            else:
                table[at] = block
            return
        fd, start = self._file.fileno(), self._body + offset
        if isinstance(at, int):
            os.pwrite(fd, data, start + at * size)
            return
        view = memoryview(data)
        for k, row in enumerate(at.tolist()):
            os.pwrite(fd, view[k * size : (k + 1) * size], start + row * size)

    def finish(self) -> RowSet:
        fields = {k: v for k, v in self.header.items() if k != "type"}
        fields["applied"] = tuple(fields["applied"])
        if self._file is None:
            return RowSet(
                **fields,
                points=self._points.reshape(-1).data,
                ciphertexts=self._ciphers.reshape(-1).data,
            )
        self._file.close()
        return RowSet.from_file(Path(self._file.name))


def token_ids(
    points: bytes | memoryview, rows: int, slots: int, point_size: int = POINT_SIZE
) -> np.ndarray:
    """64-bit ids of blinded points: 8 bytes of the x (or u) coordinate, which is pseudorandom."""
    raw = np.frombuffer(points, dtype=np.uint8).reshape(rows * slots, point_size)
    start = point_size - 32  # skip the compressed-point prefix byte of P-256
    ids = raw[:, start : start + 8].copy().view(">i8").astype(np.int64).reshape(rows, slots)
    return ids


def rowset_token_ids(rows: RowSet, chunk: int = 1 << 16) -> np.ndarray:
    """`token_ids` of a row set, read in chunks of rows (its body may be on disk)."""
    out = np.empty((rows.rows, rows.slots), dtype=np.int64)
    size = rows.row_point_bytes
    for a in range(0, rows.rows, chunk):
        b = min(rows.rows, a + chunk)
        out[a:b] = token_ids(rows.points[a * size : b * size], b - a, rows.slots, rows.point_size)
    return out


@dataclass
class Joiner:
    """Links fully blinded rows of every cohort and sums ciphertexts per entity."""

    task: TallyTask
    shuffle: Shuffler = system_shuffle
    received: dict[str, RowSet] = field(default_factory=dict)
    link_result: LinkResult | None = None
    timings: Timings = field(default_factory=Timings)
    _ids: dict[str, np.ndarray] = field(default_factory=dict)

    def receive(self, rows: RowSet) -> None:
        _validate_task_rows(self.task, rows)
        if set(rows.applied) != set(self.task.ring):
            raise ProtocolStateError(f"row set for {rows.cohort!r} is missing some party's secret")
        if rows.cohort in self.received:
            raise ProtocolStateError(f"row set for {rows.cohort!r} arrived twice (replay?)")
        self.received[rows.cohort] = rows
        with timed(self.timings, "link"):
            self._ids[rows.cohort] = rowset_token_ids(rows)

    @property
    def ready(self) -> bool:
        return set(self.received) == set(self.task.spec.cohorts)

    def link(self) -> LinkResult:
        with timed(self.timings, "link"):
            return self._link()

    def _link(self) -> LinkResult:
        ids = {c: self._ids[c] for c in self.received}
        settings = LinkSettings(threshold=self.task.spec.linkage.threshold)
        self.link_result = link_cohorts(
            ids,
            self.task.spec.linkage.keys.group_slices,
            self.task.spec.linkage.keys.comparison,
            settings=settings,
            paired=self.task.spec.linkage.keys.paired_slices,
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
        with timed(self.timings, "paillier"):
            encryptor = Encryptor(pk)
            ciphers = {c: _Ciphertexts(r, pk) for c, r in self.received.items()}
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
        ciphers: Mapping[str, Sequence[Ciphertext]],
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
        ciphers: Mapping[str, Sequence[Ciphertext]],
        encryptor: Encryptor,
    ) -> list[Ciphertext]:
        carriers = layout.carriers()
        codes = []
        for entity in chosen:
            parts = [ciphers[c][row] for c, row in entity.items() if c in carriers]
            total = sum_ciphertexts(parts, self.task.public_key)
            codes.append(total.add_plain(absent_contribution(layout, set(entity))))
        order = self.shuffle("joiner", len(codes))
        codes = [codes[i] for i in order]
        # Pack several codes per ciphertext (Horner: shift by code_bits, add the next), so
        # the hub decrypts one ciphertext per `per` codes; it learns the same multiset.
        bits, per = code_packing(layout, self.task.public_key.n_bits)
        shift = 1 << bits
        packed = []
        for i in range(0, len(codes), per):
            acc = codes[i]
            for code in codes[i + 1 : i + per]:
                acc = acc.mul_plain(shift) + code
            packed.append(acc)
        return encryptor.rerandomize_many(packed)


class _Ciphertexts(Sequence[Ciphertext]):
    """A row set's ciphertexts, parsed (and validated) only when used: the joiner needs
    those of population members, a small share of a large cohort."""

    def __init__(self, rows: RowSet, public_key: PublicKey) -> None:
        self._data, self._size, self._key = rows.ciphertexts, rows.cipher_bytes, public_key
        self._count = rows.rows * rows.width

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> Ciphertext: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Ciphertext]: ...

    def __getitem__(self, index: int | slice) -> Ciphertext | Sequence[Ciphertext]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._count))]
        if not 0 <= index < self._count:
            raise IndexError(index)
        block = self._data[index * self._size : (index + 1) * self._size]
        return Ciphertext.from_bytes(bytes(block), self._key)


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
        self.timings = Timings()

    def finish(
        self, message: EncryptedTally, *, noise: DiscreteLaplace | None = None
    ) -> TallyResult:
        """Decrypt, then protect the table (noised first when `noise` is given)."""
        if message.query_id != self.query_id or message.mode != self.layout.mode:
            raise ProtocolStateError("the encrypted tally belongs to another query or layout")
        with timed(self.timings, "paillier"):
            histogram = self._decrypt(message)
        self._private_key.destroy()
        released = protect(
            histogram,
            dimensions=self.layout.dimensions,
            levels=self.layout.levels,
            min_cell=self.spec.min_cell,
            rounding=self.spec.rounding,
            noise=noise,
        )
        return TallyResult(
            self.query_id, self.layout.dimensions, histogram, message.population, released
        )

    def _decrypt(self, message: EncryptedTally) -> dict[tuple[str, ...], int]:
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
                bits, per = code_packing(self.layout, self.public_key.n_bits)
                remaining = message.population
                for c in ciphers:
                    value, count = self._private_key.decrypt(c), min(per, remaining)
                    remaining -= count
                    for k in range(count):
                        code = value >> (bits * (count - 1 - k)) & ((1 << bits) - 1)
                        key = decode_code(self.layout, code)
                        histogram[key] = histogram.get(key, 0) + 1
        return histogram


def code_packing(layout: GroupLayout, n_bits: int) -> tuple[int, int]:
    """Bits per group code and codes per ciphertext for the joiner's packed codes."""
    assert layout.radix is not None
    bits = max(1, (layout.radix.size - 1).bit_length())
    return bits, max(1, (n_bits - 2) // bits)


def new_query_id() -> str:
    return secrets.token_hex(16)
