"""Commutative blinding of match keys: hash to a curve and raise to a per-query secret.

The default P-256 engine is openmined-psi's: a client's ``CreateRequest`` hashes items
to the curve and raises them to the client key; a server's ``ProcessRequest`` raises
already-blinded points to the server key. Both preserve order when
``reveal_intersection`` is set, which the ring relies on (each party shuffles itself).
The X25519 engine does the same on Curve25519 through libsodium, about twice as fast.
Curve objects are not shared across threads, so parallel work uses one process per
core: each engine owns a process pool that the tally steps also use for Paillier work
and key derivation.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import secrets
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from functools import lru_cache
from typing import Any, NamedTuple, Protocol, TypeVar

import gmpy2
import nacl.bindings
import nacl.exceptions
from private_set_intersection.python import Request
from private_set_intersection.python import client as psi_client
from private_set_intersection.python import server as psi_server

from protocol.errors import MalformedMessage

CHUNK = 4096
_AHEAD = 4  # chunks in flight per worker
_INLINE_LIMIT = 2 * CHUNK
_X25519_DOMAIN = b"crosstally/x25519-hash-to-curve/v1\x00"
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
        self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], *, weight: int
    ) -> Iterator[T]: ...


def _tampered(detail: str) -> MalformedMessage:
    return MalformedMessage(
        f"{detail}: the message was corrupted or tampered with; ask the sender to resend"
    )


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
            raise _tampered(
                f"a blinded point has {len(point)} bytes with prefix {point[:1].hex() or '-'}; "
                f"expected {P256Engine.point_size} bytes starting 02 or 03"
            )
    request = Request()
    request.encrypted_elements.extend(points)
    request.reveal_intersection = True
    try:
        response = _server(secret).ProcessRequest(request)
    except RuntimeError as exc:
        raise _tampered("a blinded point is not a valid compressed P-256 point") from exc
    return list(response.encrypted_elements)


def x25519_hash_and_blind(secret: bytes, items: Sequence[bytes]) -> list[bytes]:
    """Hash items into Curve25519's prime-order subgroup (Elligator 2) and apply `secret`."""
    out = []
    for item in items:
        uniform = hashlib.sha512(_X25519_DOMAIN + item).digest()[:32]
        edwards = nacl.bindings.crypto_core_ed25519_from_uniform(uniform)
        out.append(nacl.bindings.crypto_scalarmult(secret, _edwards_to_montgomery(edwards)))
    return out


_P25519 = gmpy2.mpz(2**255 - 19)


def _edwards_to_montgomery(edwards: bytes) -> bytes:
    # u = (1 + y) / (1 - y). libsodium's converter also re-checks subgroup membership
    # (a full scalar multiplication); from_uniform's output is in the subgroup already.
    y = gmpy2.mpz(int.from_bytes(edwards, "little") & ((1 << 255) - 1))
    u = (1 + y) * gmpy2.invert((1 - y) % _P25519, _P25519) % _P25519
    return int(u).to_bytes(32, "little")


def x25519_blind(secret: bytes, points: Sequence[bytes]) -> list[bytes]:
    """Apply `secret` to Montgomery u-coordinates; refuses malformed or low-order inputs."""
    out = []
    for point in points:
        if len(point) != X25519Engine.point_size:
            raise _tampered(
                f"a blinded point has {len(point)} bytes, expected {X25519Engine.point_size}"
            )
        try:
            out.append(nacl.bindings.crypto_scalarmult(secret, point))
        except nacl.exceptions.RuntimeError as exc:
            raise _tampered("a blinded point is a low-order Curve25519 point") from exc
    return out


def _packed(blind: Callable[[bytes, Sequence[bytes]], list[bytes]], size: int) -> Any:
    def blind_packed(secret: bytes, points: bytes) -> bytes:
        if len(points) % size:
            raise _tampered(f"packed points are {len(points)} bytes, not a multiple of {size}")
        return b"".join(blind(secret, [points[i : i + size] for i in range(0, len(points), size)]))

    return blind_packed


def p256_blind_packed(secret: bytes, points: bytes) -> bytes:
    """`p256_blind` over concatenated points (cheap to send to a worker)."""
    result: bytes = _packed(p256_blind, 33)(secret, points)
    return result


def x25519_blind_packed(secret: bytes, points: bytes) -> bytes:
    """`x25519_blind` over concatenated points."""
    result: bytes = _packed(x25519_blind, 32)(secret, points)
    return result


def _bounded_map(
    pool: Executor, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], *, ahead: int
) -> Iterator[T]:
    # Executor.map submits every task at once, holding all inputs in memory.
    pending: deque[Future[T]] = deque()
    for a in args:
        pending.append(pool.submit(fn, *a))
        if len(pending) >= ahead:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


class CurveFunctions(NamedTuple):
    """A curve's per-process operations (module-level, so worker processes can run them)."""

    hash_and_blind: Callable[[bytes, Sequence[bytes]], list[bytes]]
    blind: Callable[[bytes, Sequence[bytes]], list[bytes]]
    blind_packed: Callable[[bytes, bytes], bytes]


CURVE_FUNCTIONS = {
    "p256": CurveFunctions(p256_hash_and_blind, p256_blind, p256_blind_packed),
    "x25519": CurveFunctions(x25519_hash_and_blind, x25519_blind, x25519_blind_packed),
}


class PooledEngine:
    """Chunking, operation counts and the process pool shared by the curve engines."""

    name: str = ""
    point_size: int = 0

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers if workers is not None else (os.cpu_count() or 1)
        self._pool: Executor | None = None
        self._operations = 0

    def new_secret(self) -> bytes:
        raise NotImplementedError

    def operations(self) -> int:
        """Curve operations (hash-and-blind or re-blind, one per point) counted so far."""
        return self._operations

    def count(self, operations: int) -> None:
        self._operations += operations

    def hash_and_blind(self, secret: bytes, items: Sequence[bytes]) -> list[bytes]:
        self.count(len(items))
        chunks = [(secret, items[i : i + CHUNK]) for i in range(0, len(items), CHUNK)]
        parts = self.map(CURVE_FUNCTIONS[self.name].hash_and_blind, chunks, weight=len(items))
        return [p for part in parts for p in part]

    def blind(self, secret: bytes, points: Sequence[bytes]) -> list[bytes]:
        self.count(len(points))
        chunks = [(secret, points[i : i + CHUNK]) for i in range(0, len(points), CHUNK)]
        parts = self.map(CURVE_FUNCTIONS[self.name].blind, chunks, weight=len(points))
        return [p for part in parts for p in part]

    def blind_packed(self, secret: bytes, points: bytes) -> bytes:
        size = self.point_size
        self.count(len(points) // size)
        step = CHUNK * size
        chunks = [(secret, points[i : i + step]) for i in range(0, len(points), step)]
        packed = CURVE_FUNCTIONS[self.name].blind_packed
        return b"".join(self.map(packed, chunks, weight=len(points) // size))

    def map(
        self, fn: Callable[..., T], args: Iterable[tuple[Any, ...]], *, weight: int
    ) -> Iterator[T]:
        """fn(*a) for every a, in order; in worker processes when the work is big enough.

        `args` is consumed lazily, a few chunks ahead of the results, so a caller can
        stream a large input (read from disk chunk by chunk) through the pool.
        """
        if self.workers <= 1 or weight <= _INLINE_LIMIT:
            return (fn(*a) for a in args)
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=self.workers, mp_context=multiprocessing.get_context("spawn")
            )
        return _bounded_map(self._pool, fn, args, ahead=_AHEAD * self.workers)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> PooledEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class P256Engine(PooledEngine):
    """openmined-psi's P-256 commutative cipher (the default), parallel over processes."""

    name = "p256"
    point_size = 33

    def new_secret(self) -> bytes:
        return bytes(psi_client.CreateWithNewKey(True).GetPrivateKeyBytes())


class X25519Engine(PooledEngine):
    """Curve25519 through libsodium (PyNaCl): the same commutative blinding, faster.

    Items are hashed with SHA-512 and mapped by Elligator 2 into the prime-order
    subgroup (libsodium's ``crypto_core_ed25519_from_uniform``), then carried as
    Montgomery u-coordinates; X25519 with a clamped secret scalar is the blinding.
    Clamped scalars commute ([a][b]P = [b][a]P), and DDH in the prime-order subgroup
    gives the same semi-honest security argument as P-256. A u-coordinate stands for
    P and -P; two different items collide that way only with negligible probability.
    """

    name = "x25519"
    point_size = 32

    def new_secret(self) -> bytes:
        return secrets.token_bytes(32)


ENGINES: dict[str, type[PooledEngine]] = {"p256": P256Engine, "x25519": X25519Engine}
CURVES = tuple(ENGINES)


def make_engine(curve: str, workers: int | None = None) -> PooledEngine:
    """The curve engine a spec names (`linkage.curve`)."""
    return ENGINES[curve](workers)
