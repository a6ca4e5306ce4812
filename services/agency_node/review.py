"""The node's own agreement check: every task is measured against what its agency signed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from protocol.spec import QuerySpec
from services.governance import agreement_problems
from services.wire import AgreementTerms

Verdict = Literal["run", "refuse", "hold"]


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
) -> Decision:
    """Run a task only under an agreement this agency signed, or with its steward's approval."""
    if approved:
        return Decision("run", "approved by the data steward")
    terms = next((a for a in agreements if a.id == spec.agreement), None)
    if terms is None:
        problems = [f"{agency} has not signed agreement {spec.agreement}"]
    else:
        problems = agreement_problems(terms, spec, today=today, agency=agency)
    if not problems:
        return Decision("run")
    return Decision("hold" if on_unlisted == "hold" else "refuse", "; ".join(problems))
