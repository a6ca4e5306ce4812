"""Wire messages between parties: compact binary frames with a JSON header.

A frame is ``MAGIC | u32 header length | header JSON | body``. Bodies are fixed-size
blocks (33-byte points, fixed-size ciphertexts), so every length is checked before a
single value is parsed.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, overload

from protocol.errors import MalformedMessage

MAGIC = b"CTLY1"
POINT_SIZE = 33  # compressed P-256; X25519 u-coordinates are 32
POINT_SIZES = (32, 33)
MAX_HEADER = 1 << 20


def frame_head(header: dict[str, Any]) -> bytes:
    """A frame up to its body (the body follows it directly)."""
    head = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    return MAGIC + struct.pack(">I", len(head)) + head


def _frame(header: dict[str, Any], body: bytes) -> bytes:
    return frame_head(header) + body


class FileRange:
    """Bytes `start` to `start + length` of a file, read on demand (a spooled body).

    Slicing returns bytes, as slicing `bytes` does, so a row set's body may be in memory
    or on disk: a node streaming a million rows never holds them all.
    """

    def __init__(self, handle: IO[bytes], start: int, length: int) -> None:
        self._handle, self._start, self._length = handle, start, length

    def __len__(self) -> int:
        return self._length

    @property
    def path(self) -> Path:
        return Path(self._handle.name)

    def close(self) -> None:
        self._handle.close()

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: int | slice) -> int | bytes:
        if isinstance(index, int):
            return self[index : index + 1][0]
        start, stop, step = index.indices(self._length)
        if step != 1:
            raise ValueError("a file range is read in contiguous slices only")
        size = max(0, stop - start)
        data = os.pread(self._handle.fileno(), size, self._start + start)
        if len(data) != size:
            raise MalformedMessage("a spooled row set is shorter than its header says")
        return data


Body = bytes | memoryview | FileRange


def _unframe(data: bytes, kind: str) -> tuple[dict[str, Any], int]:
    """A frame's header and the offset where its body starts."""
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
    return header, start + size


def rowset_header_fields(
    *,
    query_id: str,
    cohort: str,
    applied: tuple[str, ...],
    rows: int,
    slots: int,
    width: int,
    cipher_bytes: int,
    point_size: int = POINT_SIZE,
) -> dict[str, Any]:
    """A row set's wire header (`RowSet.frame_head` frames it)."""
    return {
        "type": "rowset",
        "query_id": query_id,
        "cohort": cohort,
        "applied": list(applied),
        "rows": rows,
        "slots": slots,
        "width": width,
        "cipher_bytes": cipher_bytes,
        "point_size": point_size,
    }


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
    points: Body
    ciphertexts: Body
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

    @property
    def row_point_bytes(self) -> int:
        return self.slots * self.point_size

    @property
    def row_cipher_bytes(self) -> int:
        return self.width * self.cipher_bytes

    def point(self, row: int, slot: int) -> bytes:
        at = (row * self.slots + slot) * self.point_size
        return bytes(self.points[at : at + self.point_size])

    def point_list(self) -> list[bytes]:
        p = bytes(self.points[0 : len(self.points)])
        size = self.point_size
        return [p[i : i + size] for i in range(0, len(p), size)]

    def header(self) -> dict[str, Any]:
        return rowset_header_fields(
            query_id=self.query_id,
            cohort=self.cohort,
            applied=self.applied,
            rows=self.rows,
            slots=self.slots,
            width=self.width,
            cipher_bytes=self.cipher_bytes,
            point_size=self.point_size,
        )

    def frame_head(self) -> bytes:
        """The wire frame up to the body; the body (points, then ciphertexts) follows."""
        return frame_head(self.header())

    def to_bytes(self) -> bytes:
        return b"".join([self.frame_head(), self.points[:], self.ciphertexts[:]])

    @property
    def spool_path(self) -> Path | None:
        """The file the body is read from, or None when it is in memory."""
        return self.points.path if isinstance(self.points, FileRange) else None

    def close(self) -> None:
        """Close the spool file the body is read from (nothing to do in memory)."""
        for body in (self.points, self.ciphertexts):
            if isinstance(body, FileRange):
                body.close()

    def frame_size(self) -> int:
        """Bytes of the whole wire frame (`to_bytes` without building it)."""
        return len(self.frame_head()) + len(self.points) + len(self.ciphertexts)

    def frame_parts(self, size: int) -> Iterator[bytes]:
        """The wire frame in consecutive pieces of `size` bytes (the last may be shorter),
        read one at a time, so a spooled row set is never held whole."""
        if size < 1:
            raise ValueError("a frame part holds at least one byte")
        pieces: list[Body] = [self.frame_head(), self.points, self.ciphertexts]
        buffer = bytearray()
        for piece in pieces:
            at = 0
            while at < len(piece):
                take = min(size - len(buffer), len(piece) - at)
                buffer += piece[at : at + take]
                at += take
                if len(buffer) == size:
                    yield bytes(buffer)
                    buffer.clear()
        if buffer:
            yield bytes(buffer)

    @classmethod
    def from_file(cls, path: Path) -> RowSet:
        """A row set spooled to a file in wire format; its body stays on disk and is read
        on demand (the file stays open as long as the row set lives)."""
        handle = path.open("rb")
        try:
            size = os.fstat(handle.fileno()).st_size
            head = os.pread(handle.fileno(), len(MAGIC) + 4 + MAX_HEADER, 0)
            h, start = _unframe(head, "rowset")
            points = _int_field(h, "rows") * _int_field(h, "slots") * _int_field(h, "point_size")
            if start + points > size:
                raise MalformedMessage(
                    f"spooled row set {path.name} is shorter than its header says: truncated"
                )
        except MalformedMessage:
            handle.close()
            raise
        rest = size - start - points
        return cls._from_header(
            h, FileRange(handle, start, points), FileRange(handle, start + points, rest)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RowSet:
        """Parse a wire frame; the body is a view of `data`, not a copy."""
        h, start = _unframe(data, "rowset")
        body = memoryview(data)[start:]
        split = _int_field(h, "rows") * _int_field(h, "slots") * _int_field(h, "point_size")
        return cls._from_header(h, body[:split], body[split:])

    @classmethod
    def _from_header(cls, h: dict[str, Any], points: Body, ciphertexts: Body) -> RowSet:
        try:
            return cls(
                query_id=str(h["query_id"]),
                cohort=str(h["cohort"]),
                applied=tuple(str(a) for a in h["applied"]),
                rows=int(h["rows"]),
                slots=int(h["slots"]),
                width=int(h["width"]),
                cipher_bytes=int(h["cipher_bytes"]),
                points=points,
                ciphertexts=ciphertexts,
                point_size=int(h["point_size"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedMessage(f"row set header is incomplete: {exc!r}") from exc


def _int_field(header: dict[str, Any], name: str) -> int:
    try:
        value = int(header[name])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedMessage(
            f"row set header is incomplete: {name} is missing or not a number"
        ) from exc
    if value < 0:
        raise MalformedMessage(f"row set header has a negative {name}")
    return value


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
        h, start = _unframe(data, "tally")
        body = data[start:]
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
