"""Shared fixtures for protocol tests: one real 2048-bit Paillier key pair, one curve engine."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from protocol.blinding import P256Engine
from protocol.paillier import PrivateKey, PublicKey, generate_keypair


@pytest.fixture(scope="session")
def engine() -> Iterator[P256Engine]:
    eng = P256Engine(workers=1)
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def public_key_pair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair()
