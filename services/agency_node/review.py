"""The node's own agreement check: every task is measured against what its agency signed."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from protocol.spec import QuerySpec
from services.governance import agreement_problems, party_problems
from services.wire import NAME_PATTERN, AgreementTerms

Verdict = Literal["run", "refuse", "hold"]
STEWARD_NAMES = (
    "1 to 64 letters, digits and the characters _ . @ -, starting with a letter or digit "
    "(no spaces or brackets), for example jane.steward or jsteward@jbcssd"
)
_STEWARD = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str = ""


def review(
    spec: QuerySpec,
    *,
    agency: str,
    agreements: Sequence[AgreementTerms],
    on_unlisted: Literal["refuse", "hold"],
    approved: bool,
    today: dt.date,
    ring: Sequence[str] | None = None,
    joiner: str = "",
    parties: Iterable[str] = (),
) -> Decision:
    """Run a task only under an agreement this agency signed, or with its steward's approval;
    never one whose ring, joiner or partner keys name a party that did not sign it.

    `ring`, `joiner` and `parties` are the task's, as the hub sent them; leave `ring` out
    to review a spec alone. A steward's approval covers an agreement question, not a stranger.
    """
    terms = next((a for a in agreements if a.id == spec.agreement), None)
    newer = next((a.id for a in agreements if a.supersedes == spec.agreement), None)
    if newer is not None:
        # This agency signed an amendment: the old terms no longer speak for it.
        return Decision("refuse", f"agreement {spec.agreement} was superseded by agreement {newer}")
    if ring is not None:
        strangers = party_problems(terms, spec, ring=ring, joiner=joiner, parties=parties)
        if strangers:
            return Decision("refuse", "; ".join(strangers))
    if approved:
        return Decision("run", "approved by the data steward")
    if terms is None:
        problems = [f"{agency} has not signed agreement {spec.agreement}"]
    else:
        problems = agreement_problems(terms, spec, today=today, agency=agency)
    if not problems:
        return Decision("run")
    return Decision("hold" if on_unlisted == "hold" else "refuse", "; ".join(problems))


def steward_problem(name: str) -> str | None:
    """Why `name` cannot go to the hub as a steward's name (the hub's audit log keeps it)."""
    if _STEWARD.fullmatch(name):
        return None
    return f"steward name {name!r} is not allowed: use {STEWARD_NAMES}"


def reason_problem(reason: str) -> str | None:
    if len(reason) > 2000:
        return f"the reason is {len(reason):,} characters long; keep it to 2,000"
    return None
