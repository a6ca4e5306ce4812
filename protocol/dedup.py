"""A node's fuzzy deduplication of its own records (local linkage, in the clear).

Exact keys (the agency's person id, SSN with DOB, name with DOB) miss duplicates
entered with a typo or a nickname. Left apart, such duplicates make two rows for one
person: the second one looks unlinked, and inside the joiner's within-cohort pairs it
inflates the non-match agreement rates that Fellegi–Sunter relies on. A node may link
its own records in the clear, so it merges two of its records when their names and
DOB agree within one error *and* their SSN or their address agrees too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from protocol.linkage.candidates import agreement_patterns, candidate_pairs
from protocol.linkage.keys import KeyProfile
from protocol.records import NormalizedPerson

# Name-with-DOB levels strong enough for a merge: exact, swapped, nickname, one typo.
STRONG_NAME_LEVELS = (
    "name_dob",
    "name_pair_dob",
    "nickname_dob",
    "first_typo_dob",
    "last_typo_dob",
)


def record_token_ids(
    persons: Sequence[NormalizedPerson], profile: KeyProfile, *, first: int = 0
) -> np.ndarray:
    """Each record's key slots as 64-bit ids, for comparing a node's records in the clear.

    Records are numbered from `first`, so chunks derived apart (in worker processes)
    concatenate to the ids of the whole list.
    """
    slots = profile.slots
    ids = np.empty((len(persons), slots), dtype=np.int64)
    for i, person in enumerate(persons, start=first):
        for k, token in enumerate(profile.row_tokens([person])):
            # Unused slots get ids no token can have, deterministically.
            ids[i - first, k] = _token_id(token) if token is not None else -(i * slots + k + 1)
    return ids


def fuzzy_duplicate_pairs(
    persons: Sequence[NormalizedPerson],
    profile: KeyProfile,
    ids: np.ndarray | None = None,
) -> list[tuple[int, int]]:
    """Index pairs (i < j) of records that are the same person by the rule above.

    `ids` are the records' `record_token_ids`, when the caller derived them already.
    """
    comparison = profile.comparison
    features = dict(zip(comparison.names, comparison.bits, strict=True))
    if not {"name_dob", "ssn", "place"} <= set(features) or len(persons) < 2:
        return []
    if ids is None:
        ids = record_token_ids(persons, profile)
    ia, ib = candidate_pairs(ids, ids, upper=True)
    patterns = agreement_patterns(ids, ids, ia, ib, profile.group_slices, profile.paired_slices)
    levels = comparison.levels(patterns)
    names = comparison.names
    group_names = [g.name for g in profile.groups]
    strong = sum(1 for bit in features["name_dob"] if group_names[bit] in STRONG_NAME_LEVELS)
    name_ok = levels[:, names.index("name_dob")] < strong
    ssn_ok = levels[:, names.index("ssn")] == 0
    place_ok = levels[:, names.index("place")] < len(features["place"])
    keep = name_ok & (ssn_ok | place_ok)
    return list(zip(ia[keep].tolist(), ib[keep].tolist(), strict=True))


def _token_id(token: str) -> int:
    digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
