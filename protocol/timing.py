"""Per-phase wall-clock accounting for the tally steps (read by benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def timed(into: dict[str, float], phase: str) -> Iterator[None]:
    """Add the time spent inside the block to `into[phase]`."""
    start = time.perf_counter()
    try:
        yield
    finally:
        into[phase] = into.get(phase, 0.0) + time.perf_counter() - start
