"""A small client for people's side of the hub API (admin, operator, analyst, auditor)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from protocol.disclosure import Cell, ReleasedTable

from services.wire import (
    AgreementOut,
    AgreementTerms,
    ChainVerification,
    CredentialIssued,
    CredentialOut,
    NodeOut,
    QueryDetail,
    QueryOut,
    ResultOut,
)

ENDED = ("released", "failed", "cancelled", "purged")


class HubError(Exception):
    """The hub refused a request or could not be reached; the message says why."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class HubAPI:
    """One credential's view of the hub."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0) -> None:
        self.http = httpx.Client(
            base_url=base_url, timeout=timeout, headers={"Authorization": f"Bearer {token}"}
        )

    def __enter__(self) -> HubAPI:
        return self

    def __exit__(self, *_: object) -> None:
        self.http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise HubError(f"cannot reach the hub at {self.http.base_url}: {exc}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise HubError(error["message"], response.status_code, error["code"])
            except (ValueError, KeyError, TypeError):
                raise HubError(
                    f"hub answered {response.status_code}: {response.text[:200]}",
                    response.status_code,
                ) from None
        return response.json()

    def enroll(self, agency: str, box_key: str, verify_key: str) -> CredentialIssued:
        body = {"agency": agency, "box_key": box_key, "verify_key": verify_key}
        return CredentialIssued.model_validate(self._request("POST", "/v1/admin/nodes", json=body))

    def nodes(self) -> list[NodeOut]:
        return [NodeOut.model_validate(n) for n in self._request("GET", "/v1/admin/nodes")]

    def issue(self, name: str, role: str) -> CredentialIssued:
        body = {"name": name, "role": role}
        return CredentialIssued.model_validate(
            self._request("POST", "/v1/admin/credentials", json=body)
        )

    def credentials(self) -> list[CredentialOut]:
        rows = self._request("GET", "/v1/admin/credentials")
        return [CredentialOut.model_validate(c) for c in rows]

    def revoke(self, credential_id: int) -> CredentialOut:
        path = f"/v1/admin/credentials/{credential_id}/revoke"
        return CredentialOut.model_validate(self._request("POST", path))

    def create_agreement(self, terms: AgreementTerms) -> AgreementOut:
        body = terms.model_dump(mode="json")
        return AgreementOut.model_validate(self._request("POST", "/v1/admin/agreements", json=body))

    def agreements(self) -> list[AgreementOut]:
        return [AgreementOut.model_validate(a) for a in self._request("GET", "/v1/agreements")]

    def submit(self, spec: dict[str, Any], joiner: str | None = None) -> QueryOut:
        body: dict[str, Any] = {"spec": spec}
        if joiner:
            body["joiner"] = joiner
        return QueryOut.model_validate(self._request("POST", "/v1/queries", json=body))

    def query(self, query_id: str) -> QueryDetail:
        return QueryDetail.model_validate(self._request("GET", f"/v1/queries/{query_id}"))

    def queries(self) -> list[QueryOut]:
        return [QueryOut.model_validate(q) for q in self._request("GET", "/v1/queries")]

    def cancel(self, query_id: str) -> QueryOut:
        return QueryOut.model_validate(self._request("POST", f"/v1/queries/{query_id}/cancel"))

    def result(self, query_id: str) -> ResultOut:
        return ResultOut.model_validate(self._request("GET", f"/v1/queries/{query_id}/result"))

    def audit(self, query_id: str | None = None) -> list[dict[str, Any]]:
        params = {"query_id": query_id} if query_id else {}
        rows: list[dict[str, Any]] = self._request("GET", "/v1/audit", params=params)
        return rows

    def verify_audit(self) -> ChainVerification:
        return ChainVerification.model_validate(self._request("GET", "/v1/audit/verify"))

    def wait(
        self,
        query_id: str,
        *,
        timeout: float = 3600.0,
        interval: float = 0.5,
        on_progress: Callable[[QueryDetail], None] | None = None,
    ) -> QueryDetail:
        """Poll until the query ends; `on_progress` sees every status read."""
        deadline = time.monotonic() + timeout
        while True:
            detail = self.query(query_id)
            if on_progress is not None:
                on_progress(detail)
            if detail.status in ENDED:
                return detail
            if time.monotonic() > deadline:
                raise HubError(f"query {query_id} still {detail.status} after {timeout:.0f} s")
            time.sleep(interval)


def _cell(data: dict[str, Any]) -> Cell:
    from protocol.disclosure import Cell

    return Cell(tuple(str(k) for k in data["key"]), data["count"], data["status"])


def released_table(data: dict[str, Any]) -> ReleasedTable:
    """A released table from its JSON form (the inverse of `ReleasedTable.to_dict`)."""
    from protocol.disclosure import ReleasedTable

    return ReleasedTable(
        dimensions=tuple(data["dimensions"]),
        cells=tuple(_cell(c) for c in data["cells"]),
        margins={d: tuple(_cell(c) for c in cells) for d, cells in data["margins"].items()},
        total=_cell(data["total"]),
        min_cell=int(data["min_cell"]),
        rounding=data.get("rounding"),
        notes=tuple(data.get("notes", ())),
    )
