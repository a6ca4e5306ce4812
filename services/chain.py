"""Hash-chained, append-only logs: each entry's hash covers its content and the previous hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(value: Mapping[str, Any]) -> bytes:
    """Canonical JSON: sorted keys, no whitespace, UTF-8; dates and other values via str."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def link_hash(prev_hash: str, content: Mapping[str, Any]) -> str:
    """The hash of one entry: SHA-256 over the previous hash and the entry's canonical JSON."""
    return hashlib.sha256(prev_hash.encode() + b"\x00" + canonical(content)).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    """Outcome of walking a chain: how far it held and, if it broke, where and why."""

    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    problem: str | None = None


def verify_chain(entries: Iterable[tuple[int, Mapping[str, Any], str, str]]) -> ChainCheck:
    """Walk (seq, content, prev_hash, hash) in order; report the first entry that does not hold."""
    head = GENESIS
    count = 0
    expected_seq: int | None = None
    for seq, content, prev_hash, entry_hash in entries:
        if expected_seq is not None and seq != expected_seq:
            return ChainCheck(False, count, head, seq, f"entry {expected_seq} is missing")
        if prev_hash != head:
            return ChainCheck(False, count, head, seq, "previous hash does not match: reordered")
        if link_hash(prev_hash, content) != entry_hash:
            return ChainCheck(False, count, head, seq, "content does not match its hash: altered")
        head = entry_hash
        count += 1
        expected_seq = seq + 1
    return ChainCheck(True, count, head)
