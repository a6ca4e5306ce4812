"""Scanning bytes for identifiers: every needle of test_leakage, found fast with numpy windows."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from protocol.records import IDENTIFIER_FIELDS
from protocol.spec import QuerySpec
from tests.protocol.test_leakage import MIN_NEEDLE, forbidden

PREFIX = MIN_NEEDLE  # every needle is at least this long
CATEGORIES = 30  # a column with this few distinct values holds labels, not identifiers


def needles_for(
    specs: Iterable[QuerySpec], data: Mapping[str, NodeData], engine: P256Engine
) -> dict[bytes, str]:
    """Identifiers, attribute values, normalized tokens and their unkeyed hashes; plus ids."""
    needles: dict[bytes, str] = {}
    for spec in specs:
        needles.update(forbidden(spec, data, engine))
    for node in data.values():
        for r in node.records:
            for name, value in (("record_id", r.record_id), ("person_id", r.person_id)):
                if value and len(value) >= MIN_NEEDLE:
                    needles[value.encode()] = f"raw {name}"
    return needles


def without_category_labels(
    needles: Mapping[bytes, str], data: Mapping[str, NodeData]
) -> dict[bytes, str]:
    """`needles` less the values of categorical attribute columns (offense types like "status").

    A column with at most `CATEGORIES` distinct values holds labels; the hub's JSON legitimately
    holds such words. Dates, counts and every identifier stay needles.
    """
    values: dict[str, set[str]] = {}
    for node in data.values():
        for r in node.records:
            for k, v in r.attributes.items():
                values.setdefault(k, set()).add(v.upper())
    labels = {
        v
        for vs in values.values()
        if len(vs) <= CATEGORIES
        for v in vs
        if not any(ch.isdigit() for ch in v)
    }
    kept = dict(needles)
    for needle, why in needles.items():
        field = why.removeprefix("raw ")
        word = needle.decode(errors="replace").upper()
        if why.startswith("raw ") and field not in IDENTIFIER_FIELDS and word in labels:
            del kept[needle]
    return kept


class Scanner:
    """Finds any needle in a buffer: 48-bit prefixes matched with numpy, then confirmed."""

    def __init__(self, needles: Mapping[bytes, str]) -> None:
        self.by_prefix: dict[int, list[tuple[bytes, str]]] = {}
        for needle, why in needles.items():
            key = int.from_bytes(needle[:PREFIX], "big")
            self.by_prefix.setdefault(key, []).append((needle, why))
        self.keys = np.array(sorted(self.by_prefix), dtype=np.uint64)

    def find(self, data: bytes) -> list[str]:
        if len(data) < PREFIX:
            return []
        raw = np.frombuffer(data, dtype=np.uint8).astype(np.uint64)
        width = len(data) - PREFIX + 1
        windows = np.zeros(width, dtype=np.uint64)
        for k in range(PREFIX):
            windows |= raw[k : k + width] << np.uint64(8 * (PREFIX - 1 - k))
        found = []
        for pos in np.nonzero(np.isin(windows, self.keys))[0].tolist():
            for needle, why in self.by_prefix[int(windows[pos])]:
                if data.startswith(needle, pos):
                    found.append(why)
        return found
