"""Request body limits, enforced before a route reads anything (413 with a clear message)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.hub.errors import PayloadTooLarge


def _too_large(limit: int) -> str:
    return (
        f"request body exceeds this endpoint's limit of {limit:,} bytes; for relay blobs the "
        "hub operator can raise CROSSTALLY_HUB_MAX_BLOB_BYTES"
    )


class BodyLimit:
    """Refuse bodies over a limit: by Content-Length at once, else while the body streams in."""

    def __init__(
        self, app: ASGIApp, *, json_limit: int, blob_limit: int, blob_prefixes: Sequence[str]
    ) -> None:
        self.app = app
        self.json_limit = json_limit
        self.blob_limit = blob_limit
        self.blob_prefixes = tuple(blob_prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = self.blob_limit if path.startswith(self.blob_prefixes) else self.json_limit
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
