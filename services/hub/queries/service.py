"""Query lifecycle: submit against an agreement, report progress, end (key and relay destroyed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from protocol.errors import InvalidSpec
from protocol.groups import build_layout
from protocol.paillier import generate_keypair
from protocol.setexpr import parse_population
from protocol.spec import QuerySpec, parse_spec
from protocol.tally import MAX_COUNT, HubTally, new_query_id
from services.governance import read_spec
from services.hub.agreements import service as agreements
from services.hub.audit import service as audit
from services.hub.auth import Principal
from services.hub.context import HubContext
from services.hub.errors import AgreementViolation, Conflict, InvalidRequest, NotFound
from services.hub.mailbox.models import Blob
from services.hub.nodes.service import active_nodes
from services.hub.queries.models import Query
from services.hub.releases import service as releases
from services.hub.tasks.models import Task
from services.wire import (
    ENDED_STATUSES,
    QueryDetail,
    QueryOut,
    QueryProgress,
    QueryStatus,
    QuerySubmit,
    TaskOut,
)

OPEN_TASKS = ("queued", "leased", "held")


@dataclass(frozen=True)
class Plan:
    """A checked submission, ready for its key pair."""

    document: dict[str, Any]
    spec: QuerySpec
    joiner: str | None


def spec_of(query: Query) -> QuerySpec:
    return parse_spec(query.spec)


def steps_total(spec: QuerySpec) -> int:
    """Tasks (a start per node, then per cohort a forward per other node and a join) + release."""
    ring = len(spec.nodes())
    return ring + len(spec.cohorts) * ring + 1


def _plan(*, session: Session, request: QuerySubmit, today: dt.date, bits: int) -> Plan:
    document = dict(request.spec)
    # Every node must evaluate ages and dates on the same day, whenever it runs its step.
    document.setdefault("as_of", today.isoformat())
    spec = read_spec(document)
    agreement = agreements.permit(session=session, spec=spec, today=today)
    # A query the release rules would refuse (differencing, a spent budget) is refused now,
    # before anyone works on it; the rules are applied again at release.
    why = releases.refusal(session=session, spec=spec, terms=agreements.terms_of(agreement))
    if why is not None:
        raise AgreementViolation(why)
    nodes = active_nodes(session=session, agencies=[*spec.nodes(), request.joiner or ""])
    missing = [n for n in spec.nodes() if n not in nodes]
    if missing:
        raise InvalidRequest(f"node(s) {', '.join(missing)} are not enrolled or not active")
    if request.joiner is not None:
        terms = agreements.terms_of(agreement)
        if request.joiner not in nodes or request.joiner not in terms.participants:
            raise InvalidRequest(
                f"joiner {request.joiner} must be an enrolled node named in agreement "
                f"{spec.agreement}"
            )
    # An impossible group-by fails now, before the key generation.
    build_layout(
        spec, parse_population(spec.population, spec.cohorts), n_bits=bits, max_count=MAX_COUNT
    )
    return Plan(document, spec, request.joiner)


def submit(*, hub: HubContext, request: QuerySubmit, actor: Principal) -> QueryOut:
    """Check the spec and agreement, make the query's key pair, queue a start task per node."""
    now = hub.now()
    bits = hub.settings.paillier_bits
    try:
        with hub.db.transaction() as session:
            plan = _plan(session=session, request=request, today=now.date(), bits=bits)
    except (AgreementViolation, InvalidSpec, InvalidRequest) as exc:
        with hub.db.transaction() as session:
            audit.record(
                session=session,
                at=now,
                actor=actor.name,
                action="query.rejected",
                detail={
                    "agreement": str(request.spec.get("agreement", ""))[:64],
                    "reason": str(exc)[:500],
                },
            )
        raise
    # Key generation takes seconds: outside any transaction, so other writers are not blocked.
    keypair = generate_keypair(bits)
    query_id = new_query_id()
    tally = HubTally(plan.spec, joiner=plan.joiner, query_id=query_id, keypair=keypair)
    with hub.db.transaction() as session:
        _plan(session=session, request=request, today=now.date(), bits=bits)  # still permitted?
        query = Query(
            id=query_id,
            name=plan.spec.name,
            agreement_id=plan.spec.agreement,
            kind=plan.spec.kind,
            spec=plan.document,
            ring=list(tally.task.ring),
            joiner=tally.task.joiner,
            status="running",
            phase="blinding",
            submitted_by=actor.name,
            submitted_at=now,
            deadline=now + dt.timedelta(seconds=hub.settings.query_timeout_seconds),
            public_key=tally.public_key.to_bytes(),
            sealed_private_key=hub.vault.seal(query_id, keypair[1]),
            steps_total=steps_total(plan.spec),
            steps_done=0,
        )
        session.add(query)
        session.flush()
        for node in tally.task.ring:
            add_task(session=session, query=query, node=node, kind="start", now=now)
        audit.record(
            session=session,
            at=now,
            actor=actor.name,
            action="query.submitted",
            query_id=query_id,
            detail={
                "name": query.name,
                "agreement": query.agreement_id,
                "kind": query.kind,
                "ring": query.ring,
                "joiner": query.joiner,
            },
        )
        return query_out(session=session, query=query)


def add_task(
    *,
    session: Session,
    query: Query,
    node: str,
    kind: str,
    now: dt.datetime,
    input_step: str | None = None,
    input_sender: str | None = None,
) -> Task | None:
    """Queue a task unless the same one exists (a re-run step must not fork the query)."""
    key = "start" if input_step is None else f"in:{input_step}"
    exists = session.scalar(
        select(Task.id).where(Task.query_id == query.id, Task.node == node, Task.step_key == key)
    )
    if exists is not None:
        return None
    task = Task(
        query_id=query.id,
        node=node,
        kind=kind,
        step_key=key,
        input_step=input_step,
        input_sender=input_sender,
        status="queued",
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.flush()
    return task


def load(*, session: Session, query_id: str, lock: bool = False) -> Query:
    stmt = select(Query).where(Query.id == query_id)
    query = session.scalar(stmt.with_for_update() if lock else stmt)
    if query is None:
        raise NotFound(f"no query {query_id}")
    return query


def is_open(query: Query) -> bool:
    return query.status not in ENDED_STATUSES


def require_open(query: Query) -> None:
    if not is_open(query):
        raise Conflict(f"query {query.id} has ended ({query.status}); nothing more is accepted")


def end(
    *,
    session: Session,
    query: Query,
    status: QueryStatus,
    now: dt.datetime,
    actor: str = "hub",
    error: str | None = None,
) -> None:
    """End a query: destroy its private key and relay blobs, cancel what is left to do."""
    if not is_open(query):
        return
    query.status = status
    query.phase = status
    query.error = error
    query.finished_at = now
    query.sealed_private_key = None
    blobs = session.scalar(select(func.count()).select_from(Blob).where(Blob.query_id == query.id))
    session.execute(delete(Blob).where(Blob.query_id == query.id))
    session.execute(
        update(Task)
        .where(Task.query_id == query.id, Task.status.in_(OPEN_TASKS))
        .values(status="cancelled", updated_at=now)
    )
    detail: dict[str, Any] = {"status": status, "relay_blobs_deleted": blobs or 0}
    if error:
        detail["error"] = error[:500]
    audit.record(
        session=session,
        at=now,
        actor=actor,
        action=f"query.{status}",
        query_id=query.id,
        detail=detail,
    )
    audit.record(
        session=session,
        at=now,
        actor="hub",
        action="key.destroyed",
        query_id=query.id,
        detail={},
    )


def cancel(*, session: Session, query_id: str, actor: Principal, now: dt.datetime) -> QueryOut:
    query = load(session=session, query_id=query_id, lock=True)
    require_open(query)
    end(
        session=session,
        query=query,
        status="cancelled",
        now=now,
        actor=actor.name,
        error=f"cancelled by {actor.name}",
    )
    return query_out(session=session, query=query)


def query_out(*, session: Session, query: Query) -> QueryOut:
    return QueryOut(
        id=query.id,
        name=query.name,
        agreement=query.agreement_id,
        kind=query.kind,
        status=query.status,
        submitted_by=query.submitted_by,
        submitted_at=query.submitted_at,
        finished_at=query.finished_at,
        ring=list(query.ring),
        joiner=query.joiner,
        progress=QueryProgress(
            phase=query.phase, steps_done=query.steps_done, steps_total=query.steps_total
        ),
        error=query.error,
    )


def detail(*, session: Session, query_id: str) -> QueryDetail:
    query = load(session=session, query_id=query_id)
    tasks = session.scalars(select(Task).where(Task.query_id == query_id).order_by(Task.id))
    return QueryDetail(
        **query_out(session=session, query=query).model_dump(),
        tasks=[
            TaskOut(
                id=t.id,
                kind=t.kind,
                node=t.node,
                input_step=t.input_step,
                status=t.status,
                attempts=t.attempts,
                error=t.error,
            )
            for t in tasks
        ],
    )


def list_queries(
    *, session: Session, agreements_of: list[str] | None = None, limit: int = 200
) -> list[QueryOut]:
    stmt = select(Query).order_by(Query.submitted_at.desc()).limit(limit)
    if agreements_of is not None:
        stmt = stmt.where(Query.agreement_id.in_(agreements_of))
    return [query_out(session=session, query=q) for q in session.scalars(stmt)]
