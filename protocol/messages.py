"""Wire messages between parties: compact binary frames with a JSON header.

A frame is ``MAGIC | u32 header length | header JSON | body``. Bodies are fixed-size
blocks (33-byte points, fixed-size ciphertexts), so every length is checked before a
single value is parsed.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

from protocol.errors import MalformedMessage

MAGIC = b"CTLY1"
POINT_SIZE = 33  # compressed P-256; X25519 u-coordinates are 32
POINT_SIZES = (32, 33)
MAX_HEADER = 1 << 20


def _frame(header: dict[str, Any], body: bytes) -> bytes:
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + struct.pack(">I", len(head)) + head + body


def _unframe(data: bytes, kind: str) -> tuple[dict[str, Any], bytes]:
    if len(data) < len(MAGIC) + 4 or not data.startswith(MAGIC):
        raise MalformedMessage(f"not a crosstally {kind} message (bad magic or too short)")
    (size,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    start = len(MAGIC) + 4
    if size > MAX_HEADER or start + size > len(data):
        raise MalformedMessage(
            f"{kind} message header length {size} is impossible for {len(data)} bytes"
        )
    try:
        header = json.loads(data[start : start + size])
    except ValueError as exc:
        raise MalformedMessage(
            f"{kind} message header is not valid JSON: corrupted in transit"
        ) from exc
    if not isinstance(header, dict) or header.get("type") != kind:
        got = header.get("type") if isinstance(header, dict) else "?"
        raise MalformedMessage(f"expected a {kind} message, got {got}")
    return header, data[start + size :]


def rowset_header(data: bytes) -> dict[str, Any]:
    """A row set's header alone (what a relay may route on) without copying its body."""
    header, _ = _unframe(data[: len(MAGIC) + 4 + MAX_HEADER], "rowset")
    return header


@dataclass(frozen=True)
class RowSet:
    """A cohort's rows in transit: `slots` blinded points and `width` ciphertexts per row.

    `applied` lists, in order, the parties whose secret every point already carries.
    """

    query_id: str
    cohort: str
    applied: tuple[str, ...]
    rows: int
    slots: int
    width: int
    cipher_bytes: int
    points: bytes
    ciphertexts: bytes
    point_size: int = POINT_SIZE

    def __post_init__(self) -> None:
        if self.point_size not in POINT_SIZES:
            raise MalformedMessage(
                f"row set point size {self.point_size} is not one of {POINT_SIZES}"
            )
        if self.rows < 0 or self.slots < 1 or self.width < 0:
            raise MalformedMessage("row set has a negative row count, no slots or negative width")
        if len(self.points) != self.rows * self.slots * self.point_size:
            raise MalformedMessage(
                f"row set for {self.cohort!r} carries {len(self.points)} point bytes, expected "
                f"{self.rows} rows x {self.slots} slots x {self.point_size}: truncated or tampered"
            )
        if len(self.ciphertexts) != self.rows * self.width * self.cipher_bytes:
            raise MalformedMessage(
                f"row set for {self.cohort!r} carries {len(self.ciphertexts)} ciphertext bytes, "
                f"expected {self.rows} x {self.width} x {self.cipher_bytes}: truncated or tampered"
            )

    def point(self, row: int, slot: int) -> bytes:
        at = (row * self.slots + slot) * self.point_size
        return self.points[at : at + self.point_size]

    def point_list(self) -> list[bytes]:
        p = self.points
        size = self.point_size
        return [p[i : i + size] for i in range(0, len(p), size)]

    def to_bytes(self) -> bytes:
        header = {
            "type": "rowset",
            "query_id": self.query_id,
            "cohort": self.cohort,
            "applied": list(self.applied),
            "rows": self.rows,
            "slots": self.slots,
            "width": self.width,
            "cipher_bytes": self.cipher_bytes,
            "point_size": self.point_size,
        }
        return _frame(header, self.points + self.ciphertexts)

    @classmethod
    def from_bytes(cls, data: bytes) -> RowSet:
        h, body = _unframe(data, "rowset")
        try:
            rows, slots, width, cb = (
                int(h["rows"]),
                int(h["slots"]),
                int(h["width"]),
                int(h["cipher_bytes"]),
            )
            size = int(h["point_size"])
            split = rows * slots * size
            return cls(
                query_id=str(h["query_id"]),
                cohort=str(h["cohort"]),
                applied=tuple(str(a) for a in h["applied"]),
                rows=rows,
                slots=slots,
                width=width,
                cipher_bytes=cb,
                points=body[:split],
                ciphertexts=body[split:],
                point_size=size,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"row set header is incomplete: {exc!r}") from exc


@dataclass(frozen=True)
class EncryptedTally:
    """What the joiner sends the hub: encrypted group codes or a packed histogram."""

    query_id: str
    mode: str
    cipher_bytes: int
    ciphertexts: bytes
    population: int

    def __post_init__(self) -> None:
        if self.cipher_bytes <= 0 and self.ciphertexts:
            raise MalformedMessage("encrypted tally has ciphertexts but no ciphertext size")
        if self.cipher_bytes and len(self.ciphertexts) % self.cipher_bytes:
            raise MalformedMessage("encrypted tally length is not a whole number of ciphertexts")

    def to_bytes(self) -> bytes:
        header = {
            "type": "tally",
            "query_id": self.query_id,
            "mode": self.mode,
            "cipher_bytes": self.cipher_bytes,
            "population": self.population,
        }
        return _frame(header, self.ciphertexts)

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedTally:
        h, body = _unframe(data, "tally")
        try:
            return cls(
                str(h["query_id"]),
                str(h["mode"]),
                int(h["cipher_bytes"]),
                body,
                int(h["population"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"tally header is incomplete: {exc!r}") from exc
