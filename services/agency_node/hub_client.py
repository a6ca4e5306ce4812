"""The node's HTTP client for the hub: retries with backoff, one error type per outcome."""

from __future__ import annotations

import base64
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from nacl.signing import SigningKey
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)

from services.agency_node.metrics import NodeMetrics
from services.logs import replace_context
from services.wire import (
    NODE_HEADER,
    PARTS_HEADER,
    RECIPIENT_HEADER,
    SIGNATURE_HEADER,
    UPLOAD_HEADER,
    ClaimRequest,
    ClaimResponse,
    LeaseReport,
    RelayReceipt,
    StewardDecision,
    TaskProblem,
    tally_message,
)

log = logging.getLogger("crosstally.node")
T = TypeVar("T")


@dataclass(frozen=True)
class SealedPart:
    """Part `index` of `count` of a row set, sealed; every part of one run shares `upload`."""

    index: int
    count: int
    upload: str
    envelope: bytes


class HubUnavailable(Exception):
    """The hub could not be reached or answered 5xx, even after retries."""


class HubRejected(Exception):
    """The hub refused a request (4xx); `code` is its stable error code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"hub refused ({status} {code}): {message}")
        self.status = status
        self.code = code
        self.message = message


class _Retryable(Exception):
    pass


def _check(response: httpx.Response) -> httpx.Response:
    if response.status_code >= 500:
        raise _Retryable(f"hub answered {response.status_code}")
    if response.status_code >= 400:
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:200]
        raise HubRejected(response.status_code, code, message)
    return response


def _log_retry(state: RetryCallState) -> None:
    """Each reconnect attempt while the hub is away is one warning line (the first few
    seconds of a restart included), so an outage shows in the log as it happens."""
    outcome = state.outcome
    exc = outcome.exception() if outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning(
        "hub unreachable (%s); reconnect attempt %d in %.1f s",
        f"{exc.__class__.__name__}: {exc}" if exc is not None else "no answer",
        state.attempt_number + 1,
        wait,
    )


class HubClient:
    """Every call a node makes; transport errors and 5xx are retried with jittered backoff."""

    def __init__(
        self,
        base_url: str,
        *,
        agency: str,
        token: str,
        retry_seconds: float = 60.0,
        max_backoff: float = 30.0,
        client: httpx.Client | None = None,
        metrics: NodeMetrics | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        """`verify` checks the hub's certificate (NodeSettings.hub_verify()); unused when a
        ready `client` is given."""
        self.agency = agency
        self.metrics = metrics or NodeMetrics()
        self.on_contact: Callable[[], None] | None = None  # called after every 2xx answer
        headers = {"Authorization": f"Bearer {token}", NODE_HEADER: agency}
        self.http = client or httpx.Client(
            base_url=base_url, timeout=httpx.Timeout(120.0, connect=5.0), verify=verify
        )
        self.http.headers.update(headers)
        self._retry = retry(
            retry=retry_if_exception_type((_Retryable, httpx.TransportError)),
            wait=wait_exponential_jitter(initial=0.2, max=max_backoff),
            stop=stop_after_delay(retry_seconds),
            before_sleep=_log_retry,
            reraise=True,
        )

    def _call(self, send: Callable[[], httpx.Response]) -> httpx.Response:
        try:
            response = self._retry(lambda: _check(send()))()
        except (_Retryable, httpx.TransportError) as exc:
            self.metrics.errors.labels("hub_unreachable").inc()
            raise HubUnavailable(f"hub unreachable: {exc.__class__.__name__}: {exc}") from exc
        except HubRejected:
            self.metrics.errors.labels("hub_refused").inc()
            raise
        if self.on_contact is not None:
            self.on_contact()
        return response

    def _post(self, path: str, model: Any, timeout: float | None = None) -> httpx.Response:
        body = model.model_dump(mode="json")
        extra: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        return self._call(lambda: self.http.post(path, json=body, **extra))

    def claim(self, request: ClaimRequest) -> ClaimResponse:
        """Poll for a task; the lines this thread logs next are about it (or about none)."""
        response = self._post("/v1/node/tasks/claim", request, timeout=request.wait_seconds + 30)
        claimed = ClaimResponse.model_validate(response.json())
        task = claimed.task
        if task is None:
            replace_context(agency=self.agency)
        else:
            self.metrics.leased(task.id, task.kind)
            step = task.input_step or task.kind
            replace_context(agency=self.agency, query_id=task.query_id, step=step, task=task.id)
        return claimed

    def heartbeat(self, task_id: int, lease_token: str) -> None:
        self._post(f"/v1/node/tasks/{task_id}/heartbeat", LeaseReport(lease_token=lease_token))

    def complete(self, task_id: int, lease_token: str) -> None:
        self._post(f"/v1/node/tasks/{task_id}/complete", LeaseReport(lease_token=lease_token))
        self.metrics.ended(task_id, "done")

    def report(self, task_id: int, verb: str, problem: TaskProblem) -> None:
        """`verb` is fail, refuse or hold."""
        self._post(f"/v1/node/tasks/{task_id}/{verb}", problem)
        self.metrics.ended(task_id, verb)

    def decide(self, query_id: str, decision: StewardDecision) -> None:
        self._post(f"/v1/node/queries/{query_id}/decision", decision)

    def push(self, query_id: str, step: str, recipient: str, part: SealedPart) -> RelayReceipt:
        """Hand one sealed part of a row set to the relay."""
        headers = {"Content-Type": "application/octet-stream", RECIPIENT_HEADER: recipient}
        path = f"/v1/node/mailbox/{query_id}/{step}"
        params: dict[str, str | int] = {
            "part": part.index,
            "parts": part.count,
            "upload": part.upload,
        }
        response = self._call(
            lambda: self.http.put(path, content=part.envelope, headers=headers, params=params)
        )
        self.metrics.relay_bytes.labels("out").inc(len(part.envelope))
        return RelayReceipt.model_validate(response.json())

    def fetch(self, query_id: str, step: str, part: int = 0) -> SealedPart:
        """One sealed part of a row set addressed to this node."""
        path = f"/v1/node/mailbox/{query_id}/{step}"
        response = self._call(lambda: self.http.get(path, params={"part": part}))
        self.metrics.relay_bytes.labels("in").inc(len(response.content))
        try:
            count = int(response.headers.get(PARTS_HEADER, "1"))
        except ValueError:
            count = 0  # the recipient refuses a part whose place it cannot check
        return SealedPart(
            envelope=response.content,
            index=part,
            count=count,
            upload=response.headers.get(UPLOAD_HEADER, ""),
        )

    def push_tally(self, query_id: str, body: bytes, signing_key: SigningKey) -> None:
        signature = signing_key.sign(tally_message(query_id, body)).signature
        headers = {
            "Content-Type": "application/octet-stream",
            SIGNATURE_HEADER: base64.b64encode(signature).decode(),
        }
        path = f"/v1/node/queries/{query_id}/tally"
        self._call(lambda: self.http.post(path, content=body, headers=headers))

    def close(self) -> None:
        self.http.close()
