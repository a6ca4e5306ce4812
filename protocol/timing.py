"""Per-phase wall-clock accounting for the tally steps (read by benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

Span = tuple[str, float, float]
"""A phase and when it ran: start and end on `time.perf_counter`'s clock."""


class Timings(dict[str, float]):
    """Seconds spent in each phase, and every timed span.

    On Linux `perf_counter` reads the system-wide monotonic clock, so spans recorded by
    parties in different processes can be laid over one another (`wall_seconds`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []


@contextmanager
def timed(into: dict[str, float], phase: str) -> Iterator[None]:
    """Add the time spent inside the block to `into[phase]` (and its span, for `Timings`)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        end = time.perf_counter()
        into[phase] = into.get(phase, 0.0) + end - start
        if isinstance(into, Timings):
            into.spans.append((phase, start, end))


def wall_seconds(spans: Iterable[Span]) -> dict[str, float]:
    """For each phase, the wall time during which at least one party was in it.

    Parties that run at the same time each add their own seconds to `Timings`; the sum
    can exceed the tally's wall time. The union of their spans cannot.
    """
    by_phase: dict[str, list[tuple[float, float]]] = {}
    for phase, start, end in spans:
        by_phase.setdefault(phase, []).append((start, end))
    out: dict[str, float] = {}
    for phase, intervals in by_phase.items():
        total, reach = 0.0, float("-inf")
        for start, end in sorted(intervals):
            if end > reach:
                total += end - max(start, reach)
                reach = end
        out[phase] = total
    return out
