"""Accepting the joiner's encrypted tally, decrypting it, releasing the protected table.

Before a table is stored the agreement's release rules are applied (`releases.refusal`:
minimum sizes, differencing, privacy budget); a query they refuse ends failed, with the
reason, and nothing of its table is kept.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from sqlalchemy.orm import Session

from protocol.errors import MalformedMessage
from protocol.messages import EncryptedTally
from protocol.paillier import PublicKey
from protocol.spec import QuerySpec
from protocol.tally import HubTally, TallyResult
from services.hub.agreements import service as agreements
from services.hub.agreements.models import Agreement
from services.hub.audit import service as audit
from services.hub.auth import Principal
from services.hub.context import HubContext
from services.hub.errors import Conflict, Forbidden, Gone, NotFound
from services.hub.nodes.models import Node
from services.hub.queries import service as queries
from services.hub.queries.models import Query
from services.hub.releases import service as releases
from services.hub.results.models import Result
from services.hub.tasks import service as tasks
from services.wire import AgreementTerms, ResultOut, TallyReceipt, tally_message

_BAD_SIGNATURE = "the tally's signature does not verify: tampered, truncated or from another node"


def _check_sender(session: Session, query: Query, agency: str, body: bytes, sig: str) -> None:
    if agency != query.joiner:
        raise Forbidden(f"only the joiner ({query.joiner}) sends query {query.id}'s tally")
    node = session.get(Node, agency)
    assert node is not None  # authenticated nodes are enrolled
    try:
        VerifyKey(node.verify_key).verify(
            tally_message(query.id, body), base64.b64decode(sig, validate=True)
        )
    except (BadSignatureError, binascii.Error, ValueError) as exc:
        raise MalformedMessage(_BAD_SIGNATURE) from exc


def _terms(session: Session, query: Query) -> AgreementTerms:
    agreement = session.get(Agreement, query.agreement_id)
    assert agreement is not None
    return agreements.terms_of(agreement)


def _population(terms: AgreementTerms, message: EncryptedTally, result: TallyResult) -> int:
    """The population the minimum applies to: with privacy on, the noisy total as released
    (a suppressed total is below min_cell), so the check too is a function of noisy counts."""
    if terms.privacy is None:
        return message.population
    return result.released.total.count or 0


def _refuse(
    *,
    session: Session,
    query: Query,
    agency: str,
    message: EncryptedTally,
    size: int,
    reason: str,
    now: dt.datetime,
) -> TallyReceipt:
    """End a query whose table the agreement's release rules refuse; nothing is stored."""
    query = queries.load(session=session, query_id=query.id, lock=True)
    if not queries.is_open(query):
        raise Conflict(f"query {query.id} has ended ({query.status}); its tally was taken")
    audit.record(
        session=session,
        at=now,
        actor=f"node:{agency}",
        action="tally.received",
        query_id=query.id,
        detail={"size": audit.size_bucket(size), "mode": message.mode},
    )
    audit.record(
        session=session,
        at=now,
        actor="hub",
        action="result.refused",
        query_id=query.id,
        detail={"reason": reason[:500]},
    )
    tasks.tally_sent(session=session, query_id=query.id, agency=agency, now=now)
    queries.end(session=session, query=query, status="failed", now=now, error=reason)
    return TallyReceipt(query_id=query.id, status="failed")


def accept_tally(
    *, hub: HubContext, query_id: str, agency: str, body: bytes, signature: str
) -> TallyReceipt:
    """Verify, decrypt and protect; then store the table and end the query (key destroyed)."""
    with hub.db.transaction() as session:
        query = queries.load(session=session, query_id=query_id)
        if not queries.is_open(query):
            raise Conflict(f"query {query_id} has ended ({query.status}); its tally was taken")
        _check_sender(session, query, agency, body, signature)
        message = EncryptedTally.from_bytes(body)
        public_key = PublicKey.from_bytes(query.public_key)
        if query.sealed_private_key is None:
            raise Gone(f"query {query_id}'s private key was destroyed")
        private_key = hub.vault.open(query_id, public_key, query.sealed_private_key)
        spec: QuerySpec = queries.spec_of(query)
        joiner = query.joiner
        terms = _terms(session, query)
        # A population the hub already knows to be too small is not even decrypted.
        known = None if terms.privacy is not None else message.population
        why = releases.refusal(session=session, spec=spec, terms=terms, population=known)
        if why is not None:
            private_key.destroy()
            return _refuse(
                session=session, query=query, agency=agency, message=message,
                size=len(body), reason=why, now=hub.now(),
            )  # fmt: skip
    # Decryption can take seconds for many group codes: outside any transaction.
    tally = HubTally(spec, joiner=joiner, query_id=query_id, keypair=(public_key, private_key))
    try:
        result: TallyResult = tally.finish(message, noise=releases.noise_for(terms))
    finally:
        private_key.destroy()
    now = hub.now()
    with hub.db.transaction() as session:
        query = queries.load(session=session, query_id=query_id, lock=True)
        if not queries.is_open(query) or session.get(Result, query_id) is not None:
            raise Conflict(f"query {query_id} has ended ({query.status}); its tally was taken")
        agreement = session.get(Agreement, query.agreement_id)
        assert agreement is not None
        # Again, under the agreement's lock: a near query may have been released meanwhile.
        population = _population(terms, message, result)
        why = releases.refusal(
            session=session, spec=spec, terms=terms, population=population, lock=True
        )
        if why is not None:
            return _refuse(
                session=session, query=query, agency=agency, message=message,
                size=len(body), reason=why, now=now,
            )  # fmt: skip
        releases.record(session=session, query_id=query_id, spec=spec, terms=terms, now=now)
        table = result.released.to_dict()
        session.add(
            Result(
                query_id=query_id,
                table=table,
                released_at=now,
                destroy_after=agreement.destroy_results_after,
            )
        )
        query.steps_done = query.steps_total
        statuses = [c["status"] for c in table["cells"]]
        audit.record(
            session=session,
            at=now,
            actor=f"node:{agency}",
            action="tally.received",
            query_id=query_id,
            detail={"size": audit.size_bucket(len(body)), "mode": message.mode},
        )
        audit.record(
            session=session,
            at=now,
            actor="hub",
            action="result.released",
            query_id=query_id,
            detail={
                "cells": len(statuses),
                "suppressed": sum(1 for s in statuses if s != "released"),
                **({"epsilon": terms.privacy.epsilon_per_release} if terms.privacy else {}),
            },
        )
        tasks.tally_sent(session=session, query_id=query_id, agency=agency, now=now)
        queries.end(session=session, query=query, status="released", now=now)
        return TallyReceipt(query_id=query_id, status="released")


def read(*, session: Session, query_id: str, reader: Principal, now: dt.datetime) -> ResultOut:
    """The released table, for analysts the query's agreement names."""
    query = queries.load(session=session, query_id=query_id)
    agreement = session.get(Agreement, query.agreement_id)
    assert agreement is not None
    if reader.name not in agreements.terms_of(agreement).analysts:
        raise Forbidden(
            f"{reader.name} is not an analyst of agreement {query.agreement_id}; "
            "ask its data stewards to add you"
        )
    result = session.get(Result, query_id)
    if result is None and query.status in ("failed", "cancelled"):
        why = f": {query.error}" if query.error else ""
        raise Gone(f"query {query_id} {query.status}{why}; it will not be released")
    if result is None:
        raise NotFound(
            f"query {query_id} has no released result yet (it is {query.status}); "
            "`crosstally query result --wait` waits for it"
        )
    if result.table is None:
        raise Gone(f"query {query_id}'s result was destroyed at its agreement's destruction date")
    audit.record(
        session=session,
        at=now,
        actor=reader.name,
        action="result.read",
        query_id=query_id,
        detail={},
    )
    return ResultOut(
        query_id=query_id,
        name=query.name,
        agreement=query.agreement_id,
        kind=query.kind,
        released_at=result.released_at,
        table=result.table,
    )
