"""Request body limits (413 before a route reads anything) and the failed-login bucket (429)."""

from __future__ import annotations

import json
import math
import re
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.hub.errors import PayloadTooLarge, TooManyRequests

# The only routes whose body is a blob (a sealed relay part, the joiner's tally); every
# other route takes JSON and gets the small JSON limit.
BLOB_ROUTES = (
    re.compile(r"/v1/node/mailbox/[^/]+/[^/]+"),
    re.compile(r"/v1/node/queries/[^/]+/tally"),
)


def _too_large(limit: int) -> str:
    return (
        f"request body exceeds this endpoint's limit of {limit:,} bytes; for relay blobs the "
        "hub operator can raise CROSSTALLY_HUB_MAX_BLOB_BYTES"
    )


class BodyLimit:
    """Refuse bodies over a limit: by Content-Length at once, else while the body streams in."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        json_limit: int,
        blob_limit: int,
        blob_routes: Sequence[re.Pattern[str]] = BLOB_ROUTES,
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.blob_limit = blob_limit
        self.blob_routes = tuple(blob_routes)

    def limit_for(self, path: str) -> int:
        blob = any(route.fullmatch(path) for route in self.blob_routes)
        return self.blob_limit if blob else self.json_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _reject(send, limit)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(_too_large(limit))
            return message

        await self.app(scope, counted, send)


async def _reject(send: Send, limit: int) -> None:
    body = json.dumps({"error": {"code": "payload_too_large", "message": _too_large(limit)}})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})


@dataclass
class _Bucket:
    tokens: float
    at: float


class FailureLimit:
    """A token bucket per client address, spent only by failed authentications.

    Each address may fail `burst` times at once and then `per_minute` times a minute. An
    address with no token left is refused (429) before its credential is even looked at,
    so a guesser learns nothing more until the bucket refills; good credentials from an
    address that is not failing never touch the bucket. In memory: the hub is one process.
    """

    MAX_ADDRESSES = 10_000

    def __init__(
        self, *, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.burst = burst
        self.rate = per_minute / 60.0
        self.clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, address: str, now: float) -> _Bucket:
        bucket = self._buckets.get(address)
        if bucket is None:
            return _Bucket(float(self.burst), now)
        tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
        return _Bucket(tokens, now)

    def check(self, address: str) -> None:
        """Raise TooManyRequests if `address` has used up its failures."""
        with self._lock:
            bucket = self._refilled(address, self.clock())
        if bucket.tokens < 1.0:
            wait = math.ceil((1.0 - bucket.tokens) / self.rate) if self.rate > 0 else 3600
            raise TooManyRequests(
                f"too many failed authentications from this address; wait {wait} s, then "
                "retry with a valid credential (ask the hub administrator if yours was revoked)",
                retry_after=wait,
            )

    def failed(self, address: str) -> None:
        """Spend one token of `address`'s bucket."""
        with self._lock:
            now = self.clock()
            bucket = self._refilled(address, now)
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            self._buckets[address] = bucket
            if len(self._buckets) > self.MAX_ADDRESSES:
                self._forget_full(now)

    def _forget_full(self, now: float) -> None:
        """Drop addresses whose bucket has refilled (they are as good as new)."""
        for address in list(self._buckets):
            if self._refilled(address, now).tokens >= self.burst:
                del self._buckets[address]
        while len(self._buckets) > self.MAX_ADDRESSES:  # a flood of addresses: oldest go
            del self._buckets[next(iter(self._buckets))]
