"""Phase accounting: overlapping spans of concurrent parties count once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from protocol.timing import Timings, timed, wall_seconds


def test_overlapping_spans_count_once_per_phase() -> None:
    spans = [
        ("curve", 0.0, 4.0),
        ("curve", 1.0, 3.0),  # inside the first
        ("curve", 3.5, 6.0),  # overlaps its end
        ("curve", 8.0, 9.0),  # apart
        ("paillier", 2.0, 5.0),  # other phases are counted on their own
    ]
    assert wall_seconds(spans) == {"curve": 7.0, "paillier": 3.0}


def test_timed_records_seconds_and_spans() -> None:
    timings = Timings()
    with timed(timings, "link"):
        pass
    with timed(timings, "link"):
        pass
    assert [phase for phase, _, _ in timings.spans] == ["link", "link"]
    assert all(end >= start for _, start, end in timings.spans)
    assert timings["link"] == sum(end - start for _, start, end in timings.spans)


intervals = st.lists(
    st.tuples(st.integers(0, 1000), st.integers(0, 1000)).map(sorted), min_size=1, max_size=30
)


@given(intervals)
def test_union_matches_covered_unit_cells(pairs: list[list[int]]) -> None:
    covered = {t for start, end in pairs for t in range(start, end)}
    spans = [("p", float(start), float(end)) for start, end in pairs]
    assert wall_seconds(spans) == {"p": float(len(covered))}
    # never more than the sum of the spans, never less than the longest one
    assert wall_seconds(spans)["p"] <= sum(end - start for start, end in pairs)
    assert wall_seconds(spans)["p"] >= max(end - start for start, end in pairs)
