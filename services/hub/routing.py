"""Shared route pieces: documented error responses, path parameter shapes, binary bodies."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from services.wire import AGENCY_PATTERN, AGREEMENT_PATTERN, ErrorBody

QUERY_ID_PATTERN = r"^[0-9a-f]{32}$"
STEP_PATH_PATTERN = r"^rows:[A-Za-z_][A-Za-z0-9_]{0,63}:[1-9][0-9]{0,2}$"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can return (always 401 and 422)."""
    return {s: {"model": ErrorBody} for s in sorted({401, 422, *statuses})}


QueryId = Annotated[str, Path(pattern=QUERY_ID_PATTERN, description="32 hex digits")]
AgencyCode = Annotated[str, Path(pattern=AGENCY_PATTERN)]
AgreementId = Annotated[str, Path(pattern=AGREEMENT_PATTERN)]
Step = Annotated[str, Path(pattern=STEP_PATH_PATTERN, description="rows:<cohort>:<hop>")]
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]

_BINARY = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
BINARY_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": _BINARY}}
BINARY_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": _BINARY}}
