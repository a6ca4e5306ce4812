"""The byte scanner the leakage tests rely on finds what it should, and only that."""

from __future__ import annotations

from tests.services.leakscan import Scanner


def test_the_scanner_finds_needles_anywhere() -> None:
    scanner = Scanner({b"JOHNSON": "raw last_name", b"\x02abcdefgh": "point"})
    assert scanner.find(b"xxJOHNSONyy") == ["raw last_name"]
    assert scanner.find(b"JOHNSO") == []
    assert scanner.find(b"\x00" * 100 + b"\x02abcdefgh") == ["point"]
    assert scanner.find(b"johnson") == []
