"""The node's local store (SQLite): per-query secrets, joiner state, held tasks, outbound log.

It lives beside the agency's data and never leaves the node. Raw records are not copied
here; the only record ids stored are a match's results, which the agreement gives the node.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.agency_node.keys import fingerprint
from services.chain import GENESIS, ChainCheck, link_hash, verify_chain

SCHEMA = """
CREATE TABLE IF NOT EXISTS query_state (
    query_id TEXT PRIMARY KEY, secret BLOB NOT NULL, encryptor_state BLOB NOT NULL,
    created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS joiner_files (
    query_id TEXT NOT NULL, cohort TEXT NOT NULL, path TEXT NOT NULL, received_at TEXT NOT NULL,
    PRIMARY KEY (query_id, cohort));
CREATE TABLE IF NOT EXISTS match_rows (
    query_id TEXT NOT NULL, cohort TEXT NOT NULL, persons TEXT NOT NULL,
    PRIMARY KEY (query_id, cohort));
CREATE TABLE IF NOT EXISTS match_members (
    query_id TEXT NOT NULL, record_id TEXT NOT NULL, PRIMARY KEY (query_id, record_id));
CREATE TABLE IF NOT EXISTS held (
    query_id TEXT PRIMARY KEY, agreement TEXT NOT NULL, reason TEXT NOT NULL,
    held_at TEXT NOT NULL, decision TEXT NOT NULL DEFAULT 'pending', steward TEXT,
    decided_at TEXT, decision_reason TEXT NOT NULL DEFAULT '', reported INTEGER NOT NULL DEFAULT 0,
    ended_at TEXT, brief TEXT NOT NULL DEFAULT '{}');
CREATE TABLE IF NOT EXISTS outbound_log (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, query_id TEXT NOT NULL, kind TEXT NOT NULL,
    step TEXT NOT NULL, recipient TEXT NOT NULL, bytes INTEGER NOT NULL, rows INTEGER NOT NULL,
    outcome TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS partner_keys (
    agency TEXT PRIMARY KEY, box_key BLOB NOT NULL, verify_key BLOB NOT NULL,
    pinned_at TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS key_changes (
    agency TEXT NOT NULL, box_key BLOB NOT NULL, verify_key BLOB NOT NULL,
    first_seen TEXT NOT NULL, query_id TEXT NOT NULL,
    PRIMARY KEY (agency, box_key, verify_key));
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


@dataclass(frozen=True)
class HeldQuery:
    query_id: str
    agreement: str
    reason: str
    held_at: str
    decision: str
    steward: str | None
    decision_reason: str
    reported: bool
    ended_at: str | None = None
    brief: dict[str, Any] = field(default_factory=dict)  # what the task asks (briefing.py)

    @property
    def pending(self) -> bool:
        """Waiting for the steward: undecided, and its query has not ended at the hub."""
        return self.decision == "pending" and self.ended_at is None

    def content(self) -> dict[str, Any]:
        return {**self.__dict__, "pending": self.pending}


@dataclass(frozen=True)
class OutboundEntry:
    """One message that left the node: never its contents, only what, where and how big."""

    seq: int
    at: str
    query_id: str
    kind: str
    step: str
    recipient: str
    bytes: int
    rows: int
    outcome: str
    prev_hash: str
    hash: str

    def content(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "query_id": self.query_id,
            "kind": self.kind,
            "step": self.step,
            "recipient": self.recipient,
            "bytes": self.bytes,
            "rows": self.rows,
            "outcome": self.outcome,
        }


@dataclass(frozen=True)
class PartnerKey:
    """A partner's public keys as this node pinned them (or as the hub offered a change)."""

    agency: str
    box_key: bytes
    verify_key: bytes
    at: str  # when pinned, or when the change was first seen
    source: str  # how it was pinned, or the query that carried the change

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.box_key, self.verify_key)

    def content(self) -> dict[str, Any]:
        return {
            "agency": self.agency,
            "fingerprint": self.fingerprint,
            "at": self.at,
            "source": self.source,
        }


class NodeStore:
    """Short transactions on one SQLite file, shared by the worker, the admin API and the CLI."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30)
        try:
            conn.executescript(SCHEMA)
            columns = {r[1] for r in conn.execute("PRAGMA table_info(held)")}
            if "ended_at" not in columns:  # a store from before held queries could end
                conn.execute("ALTER TABLE held ADD COLUMN ended_at TEXT")
            if "brief" not in columns:  # a store from before held tasks said what they ask
                conn.execute("ALTER TABLE held ADD COLUMN brief TEXT NOT NULL DEFAULT '{}'")
        finally:
            conn.close()
        path.chmod(0o600)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            conn.close()

    # Per-query secrets: written before first use so a restarted node blinds the same way.
    def query_state(self, query_id: str) -> tuple[bytes, bytes] | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT secret, encryptor_state FROM query_state WHERE query_id = ?", (query_id,)
            ).fetchone()
        return None if row is None else (bytes(row[0]), bytes(row[1]))

    def save_query_state(self, query_id: str, secret: bytes, encryptor_state: bytes) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO query_state VALUES (?, ?, ?, ?)",
                (query_id, secret, encryptor_state, _now()),
            )

    def holding(self) -> list[str]:
        """Queries this node keeps state for, or holds for its steward, so the hub can say
        which have ended."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT query_id FROM query_state UNION SELECT query_id FROM joiner_files "
                "UNION SELECT query_id FROM match_rows "
                "UNION SELECT query_id FROM held WHERE ended_at IS NULL"
            ).fetchall()
        return sorted(r[0] for r in rows)

    def forget(self, query_id: str) -> None:
        """The query ended: destroy its secret and intermediate rows (match results stay);
        a task held for the steward is no longer pending."""
        with self._connect() as conn:
            for table in ("query_state", "joiner_files", "match_rows"):
                conn.execute(f"DELETE FROM {table} WHERE query_id = ?", (query_id,))
            conn.execute(
                "UPDATE held SET ended_at = ? WHERE query_id = ? AND ended_at IS NULL",
                (_now(), query_id),
            )

    # Joiner state: the files of the fully blinded row sets received so far (in wire format,
    # in the node's spool directory; the files are the runner's to delete).
    def save_joiner_rows(self, query_id: str, cohort: str, path: Path) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO joiner_files VALUES (?, ?, ?, ?)",
                (query_id, cohort, str(path), _now()),
            )

    def joiner_rows(self, query_id: str) -> dict[str, Path]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT cohort, path FROM joiner_files WHERE query_id = ?", (query_id,)
            ).fetchall()
        return {c: Path(p) for c, p in rows}

    # Match: the requester's persons in row order, then the matched record ids.
    def save_match_rows(self, query_id: str, cohort: str, persons: list[list[str]]) -> None:
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO match_rows VALUES (?, ?, ?)",
                (query_id, cohort, json.dumps(persons)),
            )

    def match_rows(self, query_id: str, cohort: str) -> list[list[str]] | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT persons FROM match_rows WHERE query_id = ? AND cohort = ?",
                (query_id, cohort),
            ).fetchone()
        return None if row is None else [list(p) for p in json.loads(row[0])]

    def save_members(self, query_id: str, record_ids: list[str]) -> None:
        with self._connect() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO match_members VALUES (?, ?)",
                [(query_id, r) for r in record_ids],
            )

    def members(self, query_id: str) -> list[str]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT record_id FROM match_members WHERE query_id = ? ORDER BY record_id",
                (query_id,),
            ).fetchall()
        return [r[0] for r in rows]

    # Held tasks and the data steward's decisions.
    def hold(
        self, query_id: str, agreement: str, reason: str, brief: dict[str, Any] | None = None
    ) -> None:
        """Keep a task for the steward, with `brief`: what it asks of this agency."""
        with self._connect() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO held (query_id, agreement, reason, held_at, brief) "
                "VALUES (?, ?, ?, ?, ?)",
                (query_id, agreement, reason, _now(), json.dumps(brief or {})),
            )

    def held(self, *, include_ended: bool = True) -> list[HeldQuery]:
        """Held queries, oldest first; without `include_ended`, only those whose query is open."""
        where = "" if include_ended else " WHERE ended_at IS NULL"
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT query_id, agreement, reason, held_at, decision, steward, "
                f"decision_reason, reported, ended_at, brief FROM held{where} ORDER BY held_at"
            ).fetchall()
        return [
            HeldQuery(
                query_id=r[0],
                agreement=r[1],
                reason=r[2],
                held_at=r[3],
                decision=r[4],
                steward=r[5],
                decision_reason=r[6],
                reported=bool(r[7]),
                ended_at=r[8],
                brief=json.loads(r[9] or "{}"),
            )
            for r in rows
        ]

    def held_query(self, query_id: str) -> HeldQuery | None:
        return next((h for h in self.held() if h.query_id == query_id), None)

    def decide(self, query_id: str, *, approve: bool, steward: str, reason: str = "") -> bool:
        """Record a steward's decision on a pending held query; False if none is pending
        (never held, already decided, or its query ended at the hub)."""
        with self._connect() as conn:
            cursor = conn.execute(
                "UPDATE held SET decision = ?, steward = ?, decided_at = ?, decision_reason = ? "
                "WHERE query_id = ? AND decision = 'pending' AND ended_at IS NULL",
                ("approved" if approve else "rejected", steward, _now(), reason, query_id),
            )
        return cursor.rowcount == 1

    def reopen(self, query_id: str, note: str) -> None:
        """A decision the hub could never take goes back to pending, with `note` saying why,
        so the steward can decide again (and nothing else waits for it)."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE held SET decision = 'pending', steward = NULL, decided_at = NULL, "
                "decision_reason = ? WHERE query_id = ? AND reported = 0",
                (note, query_id),
            )

    def mark_reported(self, query_id: str) -> None:
        with self._connect() as conn:
            conn.execute("UPDATE held SET reported = 1 WHERE query_id = ?", (query_id,))

    def approved(self, query_id: str) -> bool:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT 1 FROM held WHERE query_id = ? AND decision = 'approved'", (query_id,)
            ).fetchone()
        return row is not None

    # The outbound log: hash-chained, append-only.
    def log_outbound(
        self,
        *,
        query_id: str,
        kind: str,
        step: str,
        recipient: str,
        size: int,
        rows: int,
        outcome: str,
    ) -> OutboundEntry:
        with self._connect() as conn:
            last = conn.execute(
                "SELECT seq, hash FROM outbound_log ORDER BY seq DESC LIMIT 1"
            ).fetchone()
            seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
            draft = OutboundEntry(
                seq, _now(), query_id, kind, step, recipient, size, rows, outcome, prev, ""
            )
            entry_hash = link_hash(prev, draft.content())
            conn.execute(
                "INSERT INTO outbound_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    seq,
                    draft.at,
                    query_id,
                    kind,
                    step,
                    recipient,
                    size,
                    rows,
                    outcome,
                    prev,
                    entry_hash,
                ),
            )
        return OutboundEntry(**{**draft.__dict__, "hash": entry_hash})

    def outbound(self, *, after: int = 0, limit: int = 1000) -> list[OutboundEntry]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM outbound_log WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [OutboundEntry(*r) for r in rows]

    def outbound_totals(self) -> dict[str, tuple[int, int, int]]:
        """kind -> (messages, rows, bytes) over the whole outbound log."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT kind, COUNT(*), SUM(rows), SUM(bytes) FROM outbound_log GROUP BY kind"
            ).fetchall()
        return {r[0]: (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows}

    def verify_outbound(self) -> ChainCheck:
        entries = self.outbound(limit=1 << 62)
        return verify_chain((e.seq, e.content(), e.prev_hash, e.hash) for e in entries)

    # Partner keys, pinned at first use; a change waits for the steward (partners.py).
    def partner_keys(self) -> dict[str, PartnerKey]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT agency, box_key, verify_key, pinned_at, source FROM partner_keys"
            ).fetchall()
        return {r[0]: PartnerKey(*r) for r in rows}

    def pin_key(self, agency: str, box_key: bytes, verify_key: bytes, *, source: str) -> None:
        """Pin (or, on the steward's word, re-pin) a partner's keys; clears offered changes."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO partner_keys VALUES (?, ?, ?, ?, ?) ON CONFLICT (agency) DO UPDATE "
                "SET box_key = excluded.box_key, verify_key = excluded.verify_key, "
                "pinned_at = excluded.pinned_at, source = excluded.source",
                (agency, box_key, verify_key, _now(), source),
            )
            conn.execute("DELETE FROM key_changes WHERE agency = ?", (agency,))

    def offer_key(self, agency: str, box_key: bytes, verify_key: bytes, *, query_id: str) -> None:
        """Keep keys the hub sent for `agency` that differ from its pin, for the steward."""
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO key_changes VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (agency, box_key, verify_key, _now(), query_id),
            )

    def key_changes(self) -> list[PartnerKey]:
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT agency, box_key, verify_key, first_seen, query_id FROM key_changes "
                "ORDER BY first_seen"
            ).fetchall()
        return [PartnerKey(*r) for r in rows]
