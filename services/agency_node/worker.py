"""The pull loop: long-poll the hub, run each leased step, push its output; backoff, heartbeats."""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from nacl.signing import SigningKey
from pydantic import ValidationError

from protocol.errors import ProtocolError
from protocol.spec import QuerySpec, parse_spec
from services.agency_node.agreements import AgreementBook
from services.agency_node.briefing import task_brief
from services.agency_node.config import NodeSettings
from services.agency_node.hub_client import HubClient, HubRejected, HubUnavailable, SealedPart
from services.agency_node.partners import key_problems
from services.agency_node.review import Decision, reason_problem, review, steward_problem
from services.agency_node.steps import StepRunner, Transfer
from services.agency_node.store import NodeStore
from services.governance import size_problems
from services.wire import AgreementTerms, ClaimRequest, NodeTask, StewardDecision, TaskProblem

log = logging.getLogger("crosstally.node")


# Consecutive failed polls after which the node reports that it cannot work.
FAILING_AFTER = 3


class CohortTooSmall(Exception):
    """A cohort below the agreement's min_cohort: the node refuses before sending a row."""


@dataclass
class WorkerStatus:
    """What the local admin API reports about the loop."""

    state: str = "starting"
    current: str | None = None
    last_contact: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None
    failures: int = 0
    tasks_done: int = 0
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def error(self, message: str) -> None:
        self.last_error, self.last_error_at = message, dt.datetime.now(dt.UTC)

    def health(self, *, now: dt.datetime, stale_after: dt.timedelta) -> str:
        """ok, starting, degraded (the last exchange with the hub failed) or failing (no
        successful contact for `stale_after`, or FAILING_AFTER failed polls in a row)."""
        since = self.last_contact or self.started
        if self.failures >= FAILING_AFTER or now - since > stale_after:
            return "failing"
        if self.last_error_at is not None and (
            self.last_contact is None or self.last_error_at > self.last_contact
        ):
            return "degraded"
        return "starting" if self.last_contact is None else "ok"


class Worker:
    """One task at a time; every protocol step is resumable because secrets are persisted."""

    def __init__(
        self,
        *,
        settings: NodeSettings,
        client: HubClient,
        runner: StepRunner,
        store: NodeStore,
        signing_key: SigningKey,
        agreements: AgreementBook | None = None,
    ) -> None:
        self.settings = settings
        self.agreements = agreements or AgreementBook(settings)
        self.client = client
        self.runner = runner
        self.store = store
        self.signing_key = signing_key
        self.status = WorkerStatus()
        self._fresh = True
        client.on_contact = self._contact

    def _contact(self) -> None:
        self.status.last_contact = dt.datetime.now(dt.UTC)

    @property
    def stale_after(self) -> dt.timedelta:
        """A few poll intervals: a healthy node hears from the hub at least this often
        (a long poll, a heartbeat while a step runs, or a retry after backoff)."""
        settings = self.settings
        interval = max(settings.poll_seconds, settings.heartbeat_seconds)
        return dt.timedelta(seconds=3 * interval + settings.max_backoff_seconds + 30)

    def health(self) -> str:
        return self.status.health(now=dt.datetime.now(dt.UTC), stale_after=self.stale_after)

    def run(self, stop: threading.Event) -> None:
        """Loop until `stop` is set; hub outages back off exponentially (with jitter)."""
        while not stop.is_set():
            delay = self.poll()
            if delay:
                stop.wait(delay)
        self.status.state = "stopped"

    def poll(self) -> float:
        """One turn of the loop; returns how long to wait before the next (0 after success)."""
        try:
            self.run_once(wait=self.settings.poll_seconds)
        except HubUnavailable as exc:
            self.status.failures += 1
            delay = min(self.settings.max_backoff_seconds, 0.5 * 2.0**self.status.failures)
            self.status.state = "hub unreachable"
            self.status.error(str(exc))
            log.warning("%s; retrying in %.1f s", exc, delay)
            return delay * random.uniform(0.5, 1.0)
        except HubRejected as exc:
            # A wrong hub URL or credential: the same request will be refused the same way.
            self.status.failures += 1
            self.status.state = "refused by the hub"
            message = f"{exc}{_hint(exc)}"
            self.status.error(message)
            log.error("%s", message)
            return min(self.settings.max_backoff_seconds, float(self.status.failures))
        except Exception as exc:  # never let one bad task stop the node
            self.status.failures += 1
            log.exception("worker loop error")
            self.status.error(f"{exc.__class__.__name__}: {exc}"[:500])
            return 1.0
        self.status.failures = 0
        return 0.0

    def run_once(self, *, wait: float) -> bool:
        """Report steward decisions, claim one task (waiting up to `wait`), run it."""
        self._report_decisions()
        self.status.state = "polling"
        response = self.client.claim(
            ClaimRequest(wait_seconds=wait, holding=self.store.holding(), fresh_start=self._fresh)
        )
        self._fresh = False
        for query_id in response.ended:
            self.runner.forget(query_id)
            log.info("query %s ended; its secret and intermediate rows are destroyed", query_id)
        if response.task is None:
            self.status.state = "idle"
            return False
        self._handle(response.task)
        return True

    def _report_decisions(self) -> None:
        """Send each new steward decision; one that cannot be sent never blocks the others
        or the claim, it goes back to pending for the steward to decide again."""
        for held in self.store.held():
            if held.decision == "pending" or held.reported:
                continue
            try:
                decision = StewardDecision(
                    steward=held.steward or "steward",
                    approve=held.decision == "approved",
                    reason=held.decision_reason,
                )
            except ValidationError:
                problem = steward_problem(held.steward or "") or reason_problem(
                    held.decision_reason
                )
                note = (
                    f"the {held.decision} decision was not sent to the hub ({problem}); "
                    "decide again with `crosstally node approve|reject`"
                )
                log.error("held query %s: %s", held.query_id, note)
                self.status.error(f"held query {held.query_id}: {note}")
                self.store.reopen(held.query_id, note)
                continue
            try:
                self.client.decide(held.query_id, decision)
            except HubRejected as exc:
                log.warning("decision on %s not taken by the hub: %s", held.query_id, exc.message)
            self.store.mark_reported(held.query_id)

    def _handle(self, task: NodeTask) -> None:
        self.status.state, self.status.current = "working", f"{task.kind} {task.query_id}"
        log.info(
            "task %s: %s for query %s (%s)",
            task.id,
            task.kind,
            task.query_id,
            task.input_step or "own cohorts",
        )
        try:
            spec = parse_spec(task.spec)
            signed = self.agreements.current()  # re-read if an agreement file changed
            decision = review(
                spec,
                agency=self.settings.agency,
                agreements=signed,
                on_unlisted=self.settings.on_unlisted,
                approved=self.store.approved(task.query_id),
                today=dt.datetime.now(dt.UTC).date(),
                ring=task.ring,
                joiner=task.joiner,
                parties=task.parties,
            )
            if decision.verdict == "run":
                # Last, so only a task the node would run pins a partner's keys.
                keys = key_problems(
                    self.store,
                    task.parties,
                    agency=self.settings.agency,
                    own=self.runner.keys.public,
                    query_id=task.query_id,
                )
                if keys:
                    decision = Decision("refuse", "; ".join(keys))
            terms = next((a for a in signed if a.id == spec.agreement), None)
            if decision.verdict == "hold":
                self._hold(task, spec, decision.reason, terms)
            if decision.verdict != "run":
                self._decline(task, decision.verdict, decision.reason)
                return
            with self._heartbeats(task):
                self._run(task, terms)
            self.client.complete(task.id, task.lease_token)
            self.status.tasks_done += 1
        except CohortTooSmall as exc:
            # Nothing of the cohort left the node; the query cannot be released.
            self._decline(task, "refuse", str(exc))
        except ProtocolError as exc:
            # Tampered, replayed or malformed input: retrying cannot help.
            log.warning("task %s failed: %s", task.id, exc)
            self._fail(task, str(exc), retry=False)
        except HubRejected as exc:
            log.warning("task %s: %s", task.id, exc)
            if exc.status == 413:
                # Over the hub's body limit: a re-run would be refused the same way, after
                # redoing the whole step, until the attempts run out.
                self._fail(task, f"the hub refused {task.kind} output: {exc.message}", retry=False)
        except HubUnavailable:
            raise
        except Exception as exc:
            log.exception("task %s failed unexpectedly", task.id)
            self._fail(
                task,
                f"internal error at node {self.settings.agency}: "
                f"{exc.__class__.__name__} (see the node's log)",
                retry=True,
            )
        finally:
            self.status.current = None

    def _run(self, task: NodeTask, terms: AgreementTerms | None) -> None:
        if task.kind == "start":
            transfers = self.runner.start(task)
            try:
                # The agreement's min_cohort, on the persons selected and deduplicated here,
                # before any row of them is sent.
                sizes = {t.rows.cohort: t.rows.rows for t in transfers}
                problems = size_problems(terms, cohort_sizes=sizes) if terms else []
                if problems:
                    raise CohortTooSmall(f"{self.settings.agency}: " + "; ".join(problems))
                for transfer in transfers:
                    self._push(task, transfer)
            finally:
                for transfer in transfers:
                    transfer.discard()
            return

        def fetch(part: int) -> SealedPart:
            return self.client.fetch(task.query_id, task.input_step or "", part)

        if task.kind == "forward":
            transfer = self.runner.forward(task, fetch)
            try:
                self._push(task, transfer)
            finally:
                transfer.discard()
            return
        out = self.runner.join(task, fetch)
        if out is None:
            return
        outcome = "released"
        try:
            self.client.push_tally(task.query_id, out.body, self.signing_key)
        except HubRejected as exc:
            if exc.status != 409:
                raise
            outcome = "duplicate"
        self.store.log_outbound(
            query_id=task.query_id,
            kind="tally",
            step="tally",
            recipient="hub",
            size=len(out.body),
            rows=out.ciphertexts,
            outcome=outcome,
        )
        if out.matched is not None:
            log.info("query %s: %d matched records kept locally", task.query_id, out.matched)

    def _push(self, task: NodeTask, transfer: Transfer) -> None:
        """Seal and push the row set part by part; one outbound log entry for all of them."""
        outcome, size, parts = "relayed", 0, 0
        for part in self.runner.sealed_parts(task, transfer):
            size += len(part.envelope)  # it leaves the node even if the hub refuses it
            try:
                self.client.push(task.query_id, transfer.step, transfer.recipient, part)
            except HubRejected as exc:
                if exc.status != 409:
                    raise
                outcome = "duplicate"  # a re-run step: the first run's copy is already relayed
                break
            parts = part.count
            self.status.current = f"{task.kind} {task.query_id}: part {part.index + 1} of {parts}"
        self.store.log_outbound(
            query_id=task.query_id,
            kind="rows",
            step=transfer.step,
            recipient=transfer.recipient,
            size=size,
            rows=transfer.rows.rows,
            outcome=outcome,
        )
        if parts > 1:
            log.info(
                "task %s: %s relayed in %d parts, %d bytes", task.id, transfer.step, parts, size
            )

    def _hold(
        self, task: NodeTask, spec: QuerySpec, reason: str, terms: AgreementTerms | None
    ) -> None:
        """Keep the task for the steward with what it asks of this agency."""
        brief = task_brief(
            spec,
            agency=self.settings.agency,
            ring=task.ring,
            joiner=task.joiner,
            parties=task.parties,
            terms=terms,
        )
        self.store.hold(task.query_id, spec.agreement, reason, brief)

    def _decline(self, task: NodeTask, verdict: str, reason: str) -> None:
        log.warning("task %s %s: %s", task.id, "refused" if verdict == "refuse" else "held", reason)
        self.client.report(
            task.id, verdict, TaskProblem(lease_token=task.lease_token, reason=reason)
        )
        self.store.log_outbound(
            query_id=task.query_id,
            kind=verdict,
            step=task.kind,
            recipient="hub",
            size=len(reason.encode()),
            rows=0,
            outcome="sent",
        )

    def _fail(self, task: NodeTask, reason: str, *, retry: bool) -> None:
        self.status.error(reason)
        try:
            problem = TaskProblem(lease_token=task.lease_token, reason=reason[:2000], retry=retry)
            self.client.report(task.id, "fail", problem)
        except HubRejected as exc:
            log.warning("could not report the failure of task %s: %s", task.id, exc.message)

    @contextmanager
    def _heartbeats(self, task: NodeTask) -> Iterator[None]:
        """Extend the lease from a side thread while the (CPU-bound) step runs."""
        done = threading.Event()
        interval = min(self.settings.heartbeat_seconds, task.lease_seconds / 3)

        def beat() -> None:
            while not done.wait(interval):
                try:
                    self.client.heartbeat(task.id, task.lease_token)
                except (HubRejected, HubUnavailable) as exc:
                    log.warning("heartbeat for task %s: %s", task.id, exc)

        thread = threading.Thread(target=beat, name=f"heartbeat-{task.id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join(timeout=5)


def _hint(exc: HubRejected) -> str:
    if exc.status == 401:
        return (
            "; the hub does not know this node's credential: check credential_file holds "
            "the token printed at enrollment (re-enroll if it was revoked)"
        )
    if exc.status == 404 and exc.message in ("Not Found", "http_error"):
        return "; no hub API at hub_url: it should be the hub's base URL, without /v1"
    return ""
