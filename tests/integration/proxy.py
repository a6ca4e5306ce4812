"""A recording reverse proxy: nodes talk to the hub through it, and it keeps every request."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

from services.loopback import free_port

HOP_HEADERS = {b"host", b"content-length", b"transfer-encoding", b"connection"}


@dataclass(frozen=True)
class Captured:
    """One request exactly as a node sent it."""

    node: str
    method: str
    target: str
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes

    def wire(self) -> bytes:
        head = b"\n".join(k + b": " + v for k, v in self.headers)
        return f"{self.method} {self.target}\n".encode() + head + b"\n\n" + self.body


class RecordingProxy:
    """Forwards every request to `upstream` and records it; runs uvicorn in a thread."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.captured: list[Captured] = []
        self.port = free_port()
        self._lock = threading.Lock()
        config = uvicorn.Config(self, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("recording proxy did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message: Message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = tuple((k, v) for k, v in scope["headers"] if k not in HOP_HEADERS)
        target = scope["raw_path"].decode() + (
            "?" + scope["query_string"].decode() if scope["query_string"] else ""
        )
        node = dict(headers).get(b"x-crosstally-node", b"?").decode()
        with self._lock:
            self.captured.append(Captured(node, scope["method"], target, headers, body))
        async with httpx.AsyncClient(base_url=self.upstream, timeout=None) as client:
            try:
                response = await client.request(
                    scope["method"], target, headers=list(headers), content=body
                )
                status, out_headers, content = (
                    response.status_code,
                    [
                        (k.encode(), v.encode())
                        for k, v in response.headers.items()
                        if k.encode() not in HOP_HEADERS
                    ],
                    response.content,
                )
            except httpx.TransportError:
                status, out_headers, content = 502, [], b"upstream unreachable"
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": content})
