"""Work a tally node hands to its worker processes: key derivation, blinding, Paillier.

Each function takes and returns plain picklable values (bytes, lists, dataclasses),
keeps per-process caches (a key profile, an Encryptor's fixed-base table), and is
the same code whether it runs inline or in a pool.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from protocol.blinding import CURVE_FUNCTIONS
from protocol.cohort import normalize_records
from protocol.dedup import record_token_ids
from protocol.linkage.keys import KeyProfile, fill_slots
from protocol.paillier import (
    Encryptor,
    PublicKey,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
)
from protocol.records import NormalizedPerson

normalize_chunk = normalize_records


@lru_cache(maxsize=4)
def _profile(profile_json: str) -> KeyProfile:
    return KeyProfile.from_dict(json.loads(profile_json))


@lru_cache(maxsize=4)
def _encryptor(public_key: bytes, state: bytes) -> Encryptor:
    return Encryptor.from_state(PublicKey.from_bytes(public_key), state)


def derive_and_blind(
    engine: str, secret: bytes, profile_json: str, persons: Sequence[Sequence[NormalizedPerson]]
) -> bytes:
    """Key slots of each person (random items for unused slots), hashed and blinded."""
    profile = _profile(profile_json)
    items = [item for p in persons for item in fill_slots(profile.row_tokens(p))]
    return b"".join(CURVE_FUNCTIONS[engine].hash_and_blind(secret, items))


def record_ids_chunk(
    profile_json: str, persons: Sequence[NormalizedPerson], first: int
) -> np.ndarray:
    """`record_token_ids` of records `first`, `first + 1`, ... (for node-side deduplication)."""
    return record_token_ids(persons, _profile(profile_json), first=first)


def encrypt_chunk(public_key: bytes, state: bytes, plaintexts: Sequence[int]) -> bytes:
    return ciphertexts_to_bytes(_encryptor(public_key, state).encrypt_many(plaintexts))


def rerandomize_chunk(public_key: bytes, state: bytes, ciphertexts: bytes) -> bytes:
    pk = PublicKey.from_bytes(public_key)
    encryptor = _encryptor(public_key, state)
    return ciphertexts_to_bytes(encryptor.rerandomize_many(ciphertexts_from_bytes(ciphertexts, pk)))
