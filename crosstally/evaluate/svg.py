"""Small inline SVG charts for the evaluation report: bars, a concordance diagram, histograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

FONT = 'font-family="system-ui, sans-serif" font-size="12"'
COLORS = {"truth": "#6b7280", "classic": "#b45309", "pet": "#1d4ed8"}
TRUE_COLOR, FALSE_COLOR = "#15803d", "#dc2626"


def _svg(width: int, height: int, body: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" {FONT}>'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", extra: str = "") -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" {extra}>{escape(text)}</text>'


@dataclass(frozen=True)
class Bar:
    """One bar: its label, value, the text printed beside it and its colour."""

    label: str
    value: float
    shown: str
    color: str


def bars(items: Sequence[Bar], *, title: str, scale: float, width: int = 460) -> str:
    """Horizontal bars on a common scale (`scale` is the value of a full-width bar)."""
    label_w, row_h, pad = 175, 26, 8
    plot_w = width - label_w - 80
    body = []
    for i, bar in enumerate(items):
        y = pad + i * row_h
        w = 0.0 if scale <= 0 else max(0.0, min(1.0, bar.value / scale)) * plot_w
        body += [
            _text(label_w - 8, y + 15, bar.label, "end"),
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{bar.color}" rx="2"/>',
            _text(label_w + w + 6, y + 15, bar.shown),
        ]
    height = pad * 2 + row_h * len(items)
    body.append(
        f'<line x1="{label_w}" y1="{pad}" x2="{label_w}" y2="{height - pad}" stroke="#9ca3af"/>'
    )
    return _svg(width, height, body, title)


def concordance(both: int, classic_only: int, pet_only: int, *, title: str,
                true_counts: tuple[int, int, int] | None = None) -> str:  # fmt: skip
    """Two overlapping circles: links found by the classic hub, by the PET, and by both."""
    width, height, r = 460, 230, 90
    cx_a, cx_b, cy = 180, 280, 120
    body = [
        f'<circle cx="{cx_a}" cy="{cy}" r="{r}" fill="{COLORS["classic"]}" fill-opacity="0.25" '
        f'stroke="{COLORS["classic"]}"/>',
        f'<circle cx="{cx_b}" cy="{cy}" r="{r}" fill="{COLORS["pet"]}" fill-opacity="0.25" '
        f'stroke="{COLORS["pet"]}"/>',
        _text(cx_a - 40, 22, "classic hub", "middle", f'fill="{COLORS["classic"]}"'),
        _text(cx_b + 40, 22, "PET", "middle", f'fill="{COLORS["pet"]}"'),
    ]
    spots = ((cx_a - 50, classic_only), ((cx_a + cx_b) / 2, both), (cx_b + 50, pet_only))
    for k, (x, count) in enumerate(spots):
        body.append(_text(x, cy + 2, f"{count:,}", "middle", 'font-size="18" font-weight="600"'))
        if true_counts is not None:
            body.append(_text(x, cy + 22, f"{true_counts[k]:,} true", "middle", 'fill="#374151"'))
    labels = ("classic only", "both", "PET only")
    for (x, _), label in zip(spots, labels, strict=True):
        body.append(_text(x, cy + 42, label, "middle", 'fill="#6b7280" font-size="11"'))
    return _svg(width, height, body, title)


def histogram(scores: np.ndarray, truth: np.ndarray | None, *, title: str, color: str,
              low: float = -10.0, high: float = 40.0, bins: int = 50) -> str:  # fmt: skip
    """Score histogram (log2 odds, clipped to [low, high]); true and false pairs stacked."""
    width, height, left, bottom, top = 460, 200, 44, 34, 10
    plot_w, plot_h = width - left - 10, height - bottom - top
    edges = np.linspace(low, high, bins + 1)
    clipped = np.clip(scores, low, high - 1e-9)
    groups = [(clipped, color)] if truth is None else [
        (clipped[truth], TRUE_COLOR), (clipped[~truth], FALSE_COLOR)
    ]  # fmt: skip
    counts = [np.histogram(values, edges)[0] for values, _ in groups]
    peak = max(1, int(np.sum(counts, axis=0).max()) if counts else 1)
    # A square-root axis keeps the few high-scoring true pairs visible next to the many low ones.
    scale = plot_h / np.sqrt(peak)
    body = []
    step = plot_w / bins
    base = np.zeros(bins)
    for (_, fill), count in zip(groups, counts, strict=True):
        for i in np.flatnonzero(count):
            y0 = np.sqrt(base[i] + count[i]) * scale
            y1 = np.sqrt(base[i]) * scale
            body.append(
                f'<rect x="{left + i * step:.1f}" y="{top + plot_h - y0:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{y0 - y1:.1f}" fill="{fill}"/>'
            )
        base += count
    zero = left + (0 - low) / (high - low) * plot_w
    body += [
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" '
        'stroke="#9ca3af"/>',
        f'<line x1="{zero:.1f}" y1="{top}" x2="{zero:.1f}" y2="{top + plot_h}" '
        'stroke="#111827" stroke-dasharray="4 3"/>',
        _text(zero + 4, top + 12, "p = 0.5", extra='fill="#111827" font-size="11"'),
    ]
    for tick in range(int(low), int(high) + 1, 10):
        x = left + (tick - low) / (high - low) * plot_w
        body.append(_text(x, height - bottom + 16, str(tick), "middle", 'fill="#4b5563"'))
    body.append(_text(left + plot_w / 2, height - 4, "log2 odds of a match", "middle",
                      'fill="#4b5563" font-size="11"'))  # fmt: skip
    body.append(_text(4, top + 10, f"{peak:,}", extra='fill="#4b5563" font-size="10"'))
    return _svg(width, height, body, title)


def legend(items: Sequence[tuple[str, str]]) -> str:
    """A one-line colour legend (HTML, not SVG, so it wraps with the page)."""
    return " ".join(
        f'<span class="key"><i style="background:{color}"></i>{escape(label)}</span>'
        for label, color in items
    )
