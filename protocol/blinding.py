"""Commutative blinding of match keys: hash to the curve and raise to a per-query secret.

The P-256 engine is openmined-psi's: a client's ``CreateRequest`` hashes items to the
curve and raises them to the client key; a server's ``ProcessRequest`` raises
already-blinded points to the server key. Both preserve order when
``reveal_intersection`` is set, which the ring relies on (each party shuffles itself).
openmined-psi objects are not thread-safe, so parallel work uses one object per
process: the engine owns a process pool that the tally steps also use for Paillier
work and key derivation.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from functools import lru_cache
from typing import Any, Protocol, TypeVar

from private_set_intersection.python import Request
from private_set_intersection.python import client as psi_client
from private_set_intersection.python import server as psi_server

from protocol.errors import MalformedMessage

CHUNK = 4096
_INLINE_LIMIT = 2 * CHUNK
T = TypeVar("T")


class CurveEngine(Protocol):
    """What the protocol needs from a curve: hash-and-blind and re-blind, order preserving."""

    name: str
    point_size: int

    def new_secret(self) -> bytes: ...

    def hash_and_blind(self, secret: bytes, items: Sequence[bytes]) -> list[bytes]: ...

    def blind(self, secret: bytes, points: Sequence[bytes]) -> list[bytes]: ...

    def blind_packed(self, secret: bytes, points: bytes) -> bytes: ...

    def operations(self) -> int: ...

    def count(self, operations: int) -> None: ...

    def map(
        self, fn: Callable[..., T], args: Sequence[tuple[Any, ...]], *, weight: int
    ) -> Iterator[T]: ...


@lru_cache(maxsize=8)
def _client(secret: bytes) -> psi_client:
    return psi_client.CreateFromKey(secret, True)


@lru_cache(maxsize=8)
def _server(secret: bytes) -> psi_server:
    return psi_server.CreateFromKey(secret, True)


def p256_hash_and_blind(secret: bytes, items: Sequence[bytes]) -> list[bytes]:
    """Hash items to P-256 and raise them to `secret`, in this process."""
    return list(_client(secret).CreateRequest(list(items)).encrypted_elements)


def p256_blind(secret: bytes, points: Sequence[bytes]) -> list[bytes]:
    """Raise compressed P-256 points to `secret`, in this process; refuses invalid points."""
    for point in points:
        if len(point) != P256Engine.point_size or point[0] not in (2, 3):
            raise MalformedMessage(
                f"a blinded point has {len(point)} bytes with prefix {point[:1].hex() or '-'}; "
                f"expected {P256Engine.point_size} bytes starting 02 or 03: the message was "
                "corrupted or tampered with; ask the sender to resend"
            )
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


def p256_blind_packed(secret: bytes, points: bytes) -> bytes:
    """`p256_blind` over concatenated 33-byte points (cheap to send to a worker)."""
    size = P256Engine.point_size
    if len(points) % size:
        raise MalformedMessage(f"packed points are {len(points)} bytes, not a multiple of {size}")
    return b"".join(p256_blind(secret, [points[i : i + size] for i in range(0, len(points), size)]))


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
        """Curve operations (hash-and-blind or re-blind, one per point) counted so far."""
        return self._operations

    def count(self, operations: int) -> None:
        self._operations += operations

    def hash_and_blind(self, secret: bytes, items: Sequence[bytes]) -> list[bytes]:
        self.count(len(items))
        chunks = [(secret, items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
        return [
            p for part in self.map(p256_hash_and_blind, chunks, weight=len(items)) for p in part
        ]

    def blind(self, secret: bytes, points: Sequence[bytes]) -> list[bytes]:
        self.count(len(points))
        chunks = [(secret, points[i : i + CHUNK]) for i in range(0, len(points), CHUNK)]
        return [p for part in self.map(p256_blind, chunks, weight=len(points)) for p in part]

    def blind_packed(self, secret: bytes, points: bytes) -> bytes:
        size = self.point_size
        self.count(len(points) // size)
        step = CHUNK * size
        chunks = [(secret, points[i : i + step]) for i in range(0, len(points), step)]
        return b"".join(self.map(p256_blind_packed, chunks, weight=len(points) // size))

    def map(
        self, fn: Callable[..., T], args: Sequence[tuple[Any, ...]], *, weight: int
    ) -> Iterator[T]:
        """fn(*a) for every a, in order; in worker processes when the work is big enough."""
        if self.workers <= 1 or weight <= _INLINE_LIMIT or len(args) < 2:
            return (fn(*a) for a in args)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool.map(fn, *zip(*args, strict=True))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> P256Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def chunked(items: Sequence[T], size: int) -> Iterable[Sequence[T]]:
    return (items[i : i + size] for i in range(0, len(items), size))
