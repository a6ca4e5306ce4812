"""Wire models shared by the hub and the agency node: the JSON both sides speak."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

Role = Literal["admin", "operator", "analyst", "auditor", "monitor", "node"]
ROLES: tuple[Role, ...] = ("admin", "operator", "analyst", "auditor", "monitor", "node")
Kind = Literal["count", "tally", "match"]
TaskKind = Literal["start", "forward", "join"]
TaskStatus = Literal["queued", "leased", "held", "done", "failed", "cancelled"]
QueryStatus = Literal["running", "held", "released", "failed", "cancelled", "purged"]
ENDED_STATUSES: tuple[QueryStatus, ...] = ("released", "failed", "cancelled", "purged")

NODE_HEADER = "X-Crosstally-Node"
SIGNATURE_HEADER = "X-Crosstally-Signature"
SENDER_HEADER = "X-Crosstally-Sender"
RECIPIENT_HEADER = "X-Crosstally-Recipient"
PARTS_HEADER = "X-Crosstally-Parts"
UPLOAD_HEADER = "X-Crosstally-Upload"
UPLOAD_PATTERN = r"^[0-9a-f]{1,32}$"
DEFAULT_PART_BYTES = 32 << 20  # a node seals its row sets in parts of at most this size
MAX_PARTS = 10_000  # parts of one row set; at the default part size, over 300 GB
AGENCY_PATTERN = r"^[A-Z][A-Z0-9_]{0,31}$"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
AGREEMENT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
STEP_PATTERN = re.compile(r"^rows:([A-Za-z_][A-Za-z0-9_]{0,63}):([1-9][0-9]{0,2})$")


def _public_key_b64(value: str) -> str:
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("must be standard base64") from exc
    if len(raw) != 32:
        raise ValueError(f"must decode to 32 bytes (X25519 or Ed25519 key), not {len(raw)}")
    return value


PublicKeyB64 = Annotated[str, AfterValidator(_public_key_b64)]
AgencyCode = Annotated[str, Field(pattern=AGENCY_PATTERN, description="agency code, e.g. DCF")]
PrincipalName = Annotated[str, Field(pattern=NAME_PATTERN)]
AgreementId = Annotated[str, Field(pattern=AGREEMENT_PATTERN)]


def step_name(cohort: str, hop: int) -> str:
    """Mailbox step of a row set: its cohort and how many parties' secrets it carries."""
    return f"rows:{cohort}:{hop}"


def parse_step(step: str) -> tuple[str, int] | None:
    """(cohort, hop) of a mailbox step name, or None if it is not one."""
    match = STEP_PATTERN.match(step)
    return (match.group(1), int(match.group(2))) if match else None


def part_context(step: str, *, part: int, parts: int, upload: str) -> str:
    """What a sealed part binds besides sender, recipient and query: its step, its place
    among the parts and the upload they belong to, so the relay cannot reorder, drop,
    repeat or mix parts without the recipient noticing."""
    return f"{step}#{upload}:{part}/{parts}"


class Wire(BaseModel):
    """Base of every wire model: unknown fields are refused, so typos fail loudly."""

    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Wire):
    code: str
    message: str


class ErrorBody(Wire):
    """Every error the hub returns: a stable code and a message saying what to do."""

    error: ErrorDetail


CohortLabel = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MAX_WHERE_LENGTH = 2000
# The terms a query's shape is bound by. An agreement recorded before they existed still
# loads, but permits no query until it is recorded again with them (docs/agreements.md).
BINDING_TERMS = ("cohorts", "population", "linkage", "as_of_from", "as_of_until")


class CohortTerms(Wire):
    """One cohort an agreement names: the node that holds it and, if set, its only filter."""

    node: AgencyCode
    where: str | None = Field(
        default=None,
        max_length=MAX_WHERE_LENGTH,
        description="if set, the query's where must parse to this same expression "
        '("" for no filter); if left out, any filter over the columns the node contributes',
    )


class LinkageTerms(Wire):
    """The linkage an agreement fixes; a query must use exactly these settings."""

    profile: str = Field(max_length=64, description="the key profile's name, for the reader")
    profile_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the profile's groups and features as canonical JSON: what binds",
    )
    rule: Literal["fellegi-sunter", "exact"]
    threshold: float = Field(gt=0.0, lt=1.0)
    exact_key: str = Field(max_length=64)
    curve: Literal["p256", "x25519"]


class PrivacyTerms(Wire):
    """Differentially private release: noise on every count and a budget the hub keeps."""

    mechanism: Literal["discrete_laplace"] = "discrete_laplace"
    epsilon_per_release: float = Field(
        gt=0.0, le=10.0, description="privacy loss of one released table (noise scale 1/epsilon)"
    )
    epsilon_budget: float = Field(
        gt=0.0, le=100.0, description="total privacy loss the hub releases under this agreement"
    )

    @model_validator(mode="after")
    def _fits(self) -> PrivacyTerms:
        if self.epsilon_per_release > self.epsilon_budget:
            raise ValueError("epsilon_per_release is larger than epsilon_budget")
        return self


class AgreementTerms(Wire):
    """A data-sharing agreement (docs/agreements.md); hub and nodes hold their own copies and
    refuse any query that differs from it in what it binds."""

    id: AgreementId
    title: str = Field(default="", max_length=200)
    participants: list[AgencyCode] = Field(min_length=2, max_length=32)
    kinds: list[Kind] = Field(min_length=1)
    cohorts: dict[CohortLabel, CohortTerms] | None = Field(
        default=None, max_length=32, description="each cohort label, its node and filter"
    )
    population: str | None = Field(default=None, min_length=1, max_length=500)
    contributions: dict[AgencyCode, list[Annotated[str, Field(max_length=64)]]] = Field(
        default_factory=dict,
        description="per agency, the extract columns its cohorts and group-bys may read",
    )
    group_by: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list)
    levels: dict[Annotated[str, Field(max_length=200)], list[str]] = Field(
        default_factory=dict, description="categories of group-by terms, as the spec gives them"
    )
    age_groups: list[str] | None = Field(
        default=None, max_length=32, description="age bands of age_group terms; default built-in"
    )
    linkage: LinkageTerms | None = None
    analysts: list[PrincipalName] = Field(default_factory=list)
    match_requesters: list[AgencyCode] = Field(default_factory=list)
    min_cell: int = Field(default=11, ge=1, le=1000)
    rounding: int | None = Field(default=None, ge=1, le=1000)
    min_cohort: int | None = Field(
        default=None, ge=1, le=1_000_000, description="fewest persons in any cohort; none if null"
    )
    min_population: int | None = Field(
        default=None, ge=1, le=1_000_000, description="fewest persons counted; none if null"
    )
    privacy: PrivacyTerms | None = Field(
        default=None, description="differentially private release; off when null"
    )
    as_of_from: dt.date | None = None
    as_of_until: dt.date | None = None
    valid_from: dt.date
    valid_until: dt.date
    destroy_results_after: dt.date | None = None
    supersedes: AgreementId | None = Field(
        default=None,
        description="the agreement this one amends: no query runs under that one afterwards",
    )

    @model_validator(mode="after")
    def _consistent(self) -> AgreementTerms:
        if self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")
        if self.as_of_from and self.as_of_until and self.as_of_until < self.as_of_from:
            raise ValueError("as_of_until is before as_of_from")
        if self.destroy_results_after is not None and self.destroy_results_after < self.valid_from:
            raise ValueError("destroy_results_after is before valid_from")
        holders = {c.node for c in (self.cohorts or {}).values()}
        strangers = (set(self.contributions) | set(self.match_requesters) | holders) - set(
            self.participants
        )
        if strangers:
            raise ValueError(f"agencies {sorted(strangers)} are not participants")
        if self.supersedes == self.id:
            raise ValueError("an agreement cannot supersede itself")
        return self

    def missing_terms(self) -> list[str]:
        """Binding terms this agreement leaves out (one recorded before they existed)."""
        return [name for name in BINDING_TERMS if getattr(self, name) is None]


class AgreementOut(AgreementTerms):
    created_at: dt.datetime
    created_by: str


class NodeEnrollment(Wire):
    agency: AgencyCode
    box_key: PublicKeyB64 = Field(description="X25519 public key, base64")
    verify_key: PublicKeyB64 = Field(description="Ed25519 verify key, base64")


class PartyKeysOut(Wire):
    box_key: str
    verify_key: str


class NodeOut(Wire):
    agency: str
    box_key: str
    verify_key: str
    enrolled_at: dt.datetime
    last_seen: dt.datetime | None
    active: bool


class CredentialCreate(Wire):
    name: PrincipalName
    role: Literal["admin", "operator", "analyst", "auditor", "monitor"]


class CredentialIssued(Wire):
    """A new credential; the token is shown once and stored only as a hash."""

    id: int
    name: str
    role: Role
    agency: str | None = None
    token: str


class CredentialOut(Wire):
    id: int
    name: str
    role: Role
    agency: str | None
    created_at: dt.datetime
    revoked_at: dt.datetime | None


class QuerySubmit(Wire):
    spec: dict[str, Any] = Field(description="a query spec document (docs/protocol.md)")
    joiner: AgencyCode | None = Field(default=None, description="joining node; default last")


class QueryProgress(Wire):
    phase: str
    steps_done: int
    steps_total: int


class TaskOut(Wire):
    id: int
    kind: TaskKind
    node: str
    input_step: str | None
    status: TaskStatus
    attempts: int
    error: str | None


class QueryOut(Wire):
    id: str
    name: str
    agreement: str
    kind: Kind
    status: QueryStatus
    submitted_by: str
    submitted_at: dt.datetime
    finished_at: dt.datetime | None
    ring: list[str]
    joiner: str
    progress: QueryProgress
    error: str | None


class QueryDetail(QueryOut):
    tasks: list[TaskOut]


class ResultOut(Wire):
    query_id: str
    name: str
    agreement: str
    kind: Kind
    released_at: dt.datetime
    table: dict[str, Any] = Field(description="the disclosure-controlled table")


class ClaimRequest(Wire):
    wait_seconds: float = Field(default=0.0, ge=0.0, le=60.0)
    holding: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=1000, description="queries this node keeps state for"
    )
    fresh_start: bool = Field(default=False, description="the node restarted: drop its leases")


class NodeTask(Wire):
    """A leased task: everything public a node needs to run one protocol step."""

    id: int
    lease_token: str
    lease_seconds: float
    kind: TaskKind
    query_id: str
    agreement: str
    input_step: str | None
    input_sender: str | None
    spec: dict[str, Any]
    public_key: str = Field(description="the query's Paillier public key, base64")
    ring: list[str]
    joiner: str
    parties: dict[str, PartyKeysOut]


class ClaimResponse(Wire):
    task: NodeTask | None
    ended: list[str] = Field(description="queries from `holding` that ended: forget them")


class LeaseReport(Wire):
    lease_token: str = Field(max_length=64)


class TaskProblem(LeaseReport):
    reason: str = Field(min_length=1, max_length=2000)
    retry: bool = False


class LeaseExtended(Wire):
    lease_expires_at: dt.datetime


class StewardDecision(Wire):
    """A node's data steward decided on a held query: run it, or refuse it with a reason."""

    steward: PrincipalName
    approve: bool
    reason: str = Field(default="", max_length=2000)


class Acknowledged(Wire):
    ok: Literal[True] = True


class RelayReceipt(Wire):
    query_id: str
    step: str
    recipient: str
    bytes: int
    part: int = 0
    parts: int = 1
    complete: bool = Field(default=True, description="every part is in; the recipient is queued")


class TallyReceipt(Wire):
    query_id: str
    status: QueryStatus


class AuditEntryOut(Wire):
    seq: int
    at: dt.datetime
    actor: str
    action: str
    query_id: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class ChainVerification(Wire):
    ok: bool
    entries: int
    head: str
    first_bad: int | None = None
    problem: str | None = None


class TransparencyEntry(Wire):
    name: str
    agreement: str
    kind: Kind
    participants: list[str]
    status: QueryStatus
    submitted_on: dt.date
    finished_on: dt.date | None


class TransparencySummary(Wire):
    """The public record of queries run: metadata only, never counts or identifiers."""

    queries: list[TransparencyEntry]
    by_status: dict[str, int]
    agreements: list[str]


class Health(Wire):
    status: Literal["ok"]
    version: str


def tally_message(query_id: str, body: bytes) -> bytes:
    """What the joiner signs when it sends the hub a query's encrypted tally."""
    return b"crosstally/tally/v1\x00" + query_id.encode() + b"\x00" + body
