"""Commutative blinding of match keys: hash to the curve and raise to a per-query secret.

The P-256 engine is openmined-psi's: a client's ``CreateRequest`` hashes items to the
curve and raises them to the client key; a server's ``ProcessRequest`` raises
already-blinded points to the server key. Both preserve order when
``reveal_intersection`` is set, which the ring relies on (each party shuffles itself).
openmined-psi objects are not thread-safe, so parallel work uses one object per process.
"""

from __future__ import annotations

import multiprocessing
import os
import secrets
from collections.abc import Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import lru_cache
from typing import Protocol

from private_set_intersection.python import Request
from private_set_intersection.python import client as psi_client
from private_set_intersection.python import server as psi_server

from protocol.errors import MalformedMessage

_CHUNK = 4096
_INLINE_LIMIT = 2 * _CHUNK


class CurveEngine(Protocol):
    """What the protocol needs from a curve: hash-and-blind and re-blind, order preserving."""

    name: str
    point_size: int

    def new_secret(self) -> bytes: ...

    def hash_and_blind(self, secret: bytes, items: Sequence[bytes]) -> list[bytes]: ...

    def blind(self, secret: bytes, points: Sequence[bytes]) -> list[bytes]: ...

    def operations(self) -> int: ...


@lru_cache(maxsize=8)
def _client(secret: bytes) -> psi_client:
    return psi_client.CreateFromKey(secret, True)


@lru_cache(maxsize=8)
def _server(secret: bytes) -> psi_server:
    return psi_server.CreateFromKey(secret, True)


def _hash_and_blind_chunk(secret: bytes, items: Sequence[bytes]) -> list[bytes]:
    return list(_client(secret).CreateRequest(list(items)).encrypted_elements)


def _blind_chunk(secret: bytes, points: Sequence[bytes]) -> list[bytes]:
    request = Request()
    request.encrypted_elements.extend(points)
    request.reveal_intersection = True
    try:
        response = _server(secret).ProcessRequest(request)
    except RuntimeError as exc:
        raise MalformedMessage(
            "a blinded point is not a valid compressed P-256 point: the message was "
            "corrupted or tampered with; ask the sender to resend"
        ) from exc
    return list(response.encrypted_elements)


class P256Engine:
    """openmined-psi's P-256 commutative cipher, parallel over processes."""

    name = "p256"
    point_size = 33

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: Executor | None = None
        self._operations = 0

    def new_secret(self) -> bytes:
        return bytes(psi_client.CreateWithNewKey(True).GetPrivateKeyBytes())

    def operations(self) -> int:
        """Curve multiplications performed so far by this engine (for benchmarks)."""
        return self._operations

    def hash_and_blind(self, secret: bytes, items: Sequence[bytes]) -> list[bytes]:
        self._operations += len(items)
        return self._map(_hash_and_blind_chunk, secret, items)

    def blind(self, secret: bytes, points: Sequence[bytes]) -> list[bytes]:
        for point in points:
            if len(point) != self.point_size or point[0] not in (2, 3):
                raise MalformedMessage(
                    f"a blinded point has {len(point)} bytes with prefix {point[:1].hex() or '-'}; "
                    f"expected {self.point_size} bytes starting 02 or 03: the message was "
                    "corrupted or tampered with; ask the sender to resend"
                )
        self._operations += len(points)
        return self._map(_blind_chunk, secret, points)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _map(self, fn: _ChunkFn, secret: bytes, values: Sequence[bytes]) -> list[bytes]:
        if self.workers <= 1 or len(values) <= _INLINE_LIMIT:
            return fn(secret, values)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        chunks = [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]
        out: list[bytes] = []
        for part in self._pool.map(fn, [secret] * len(chunks), chunks):
            out.extend(part)
        return out


class _ChunkFn(Protocol):
    def __call__(self, secret: bytes, values: Sequence[bytes], /) -> list[bytes]: ...


def random_items(count: int) -> list[bytes]:
    """Fresh random items: hashed and blinded they are indistinguishable from real keys."""
    return [secrets.token_bytes(16) for _ in range(count)]
