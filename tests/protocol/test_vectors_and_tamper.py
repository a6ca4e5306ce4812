"""Known-answer vectors (data files) and tamper tests: a flipped byte must be rejected."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol.blinding import P256Engine, PooledEngine, X25519Engine
from protocol.envelope import EnvelopeError, PartyKeys, open_sealed, seal
from protocol.errors import MalformedMessage
from protocol.linkage.keys import load_profile
from protocol.linkage.normalize import normalize_person
from protocol.messages import EncryptedTally, RowSet
from protocol.paillier import Ciphertext, Encryptor, PrivateKey, PublicKey
from protocol.records import PersonRecord

VECTORS = Path(__file__).parent / "vectors"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((VECTORS / name).read_text())
    return data


def flip_byte(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize(
    ("engine", "vectors"),
    [(P256Engine(workers=1), "blinding.json"), (X25519Engine(workers=1), "blinding_x25519.json")],
)
def test_blinding_known_answers(engine: PooledEngine, vectors: str) -> None:
    v = load(vectors)
    items = [bytes.fromhex(i) for i in v["items"]]
    a = engine.hash_and_blind(bytes.fromhex(v["secret_a"]), items)
    assert [p.hex() for p in a] == v["blinded_a"]
    ab = engine.blind(bytes.fromhex(v["secret_b"]), a)
    assert [p.hex() for p in ab] == v["blinded_ab"]
    # Commutative: b then a gives the same points, which is what lets the ring work.
    b = engine.hash_and_blind(bytes.fromhex(v["secret_b"]), items)
    assert engine.blind(bytes.fromhex(v["secret_a"]), b) == ab


def test_standard_profile_tokens_are_stable() -> None:
    # Every node must derive the same tokens; a change here breaks cross-version queries.
    v = load("standard_tokens.json")
    person = normalize_person(PersonRecord(**v["record"]), today=dt.date(2026, 6, 30))
    assert load_profile(v["profile"]).row_tokens([person]) == v["slots"]


def test_a_point_with_a_corrupted_prefix_or_length_is_rejected(engine: P256Engine) -> None:
    # (02 <-> 03 is the negated point, still valid: only the envelope's MAC catches that.)
    point = bytes.fromhex(load("blinding.json")["blinded_a"][0])
    for bad in (bytes([point[0] ^ 0x06]) + point[1:], point[:-1], point + b"\x00"):
        with pytest.raises(MalformedMessage, match="expected 33 bytes starting 02 or 03"):
            engine.blind(b"\x07" * 32, [bad])


def test_a_point_off_the_curve_is_rejected(engine: P256Engine) -> None:
    point = bytes.fromhex(load("blinding.json")["blinded_a"][0])
    # Flipping x-coordinate bytes lands off the curve about half the time; find one.
    for i in range(1, 33):
        try:
            engine.blind(b"\x07" * 32, [flip_byte(point, i)])
        except MalformedMessage as exc:
            assert "not a valid compressed P-256 point" in str(exc)
            return
    pytest.fail("no flipped byte produced an invalid point")


def test_x25519_refuses_short_and_low_order_points() -> None:
    engine = X25519Engine(workers=1)
    point = bytes.fromhex(load("blinding_x25519.json")["blinded_a"][0])
    with pytest.raises(MalformedMessage, match="expected 32"):
        engine.blind(b"\x07" * 32, [point[:-1]])
    with pytest.raises(MalformedMessage, match="low-order"):
        engine.blind(b"\x07" * 32, [bytes(32)])


def test_a_ciphertext_with_a_flipped_byte_is_rejected_or_decrypts_differently(
    public_key_pair: tuple[PublicKey, PrivateKey],
) -> None:
    pk, sk = public_key_pair
    c = Encryptor(pk).encrypt(42)
    data = c.to_bytes()
    for i in (0, len(data) // 2, len(data) - 1):
        try:
            tampered = Ciphertext.from_bytes(flip_byte(data, i), pk)
        except MalformedMessage:
            continue
        assert sk.decrypt(tampered) != 42
    with pytest.raises(MalformedMessage, match="expected 512"):
        Ciphertext.from_bytes(data[:-1], pk)


def rowset() -> RowSet:
    return RowSet("q1", "dcf", ("DCF",), 2, 1, 0, 512, b"\x02" * 66, b"")


def test_truncated_or_padded_row_sets_are_rejected() -> None:
    wire = rowset().to_bytes()
    assert RowSet.from_bytes(wire) == rowset()
    with pytest.raises(MalformedMessage, match="point bytes"):
        RowSet.from_bytes(wire[:-1])
    with pytest.raises(MalformedMessage, match="ciphertext bytes"):
        RowSet.from_bytes(wire + b"\x00")
    with pytest.raises(MalformedMessage, match="bad magic"):
        RowSet.from_bytes(flip_byte(wire, 0))
    with pytest.raises(MalformedMessage, match="expected a rowset"):
        RowSet.from_bytes(EncryptedTally("q1", "count", 0, b"", 3).to_bytes())


def test_spooled_row_sets_are_read_from_disk_and_checked_the_same(tmp_path: Path) -> None:
    wire = rowset().to_bytes()
    path = tmp_path / "rows.ctly"
    path.write_bytes(wire)
    spooled = RowSet.from_file(path)
    assert spooled.to_bytes() == wire
    assert spooled.point(1, 0) == b"\x02" * 33
    path.write_bytes(wire[:-1])
    with pytest.raises(MalformedMessage, match="truncated"):
        RowSet.from_file(path)
    path.write_bytes(wire + b"\x00")
    with pytest.raises(MalformedMessage, match="ciphertext bytes"):
        RowSet.from_file(path)
    path.write_bytes(flip_byte(wire, 0))
    with pytest.raises(MalformedMessage, match="bad magic"):
        RowSet.from_file(path)


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(0, 40),
    width=st.integers(0, 2),
    size=st.integers(1, 3000),
    seed=st.binary(min_size=1, max_size=8),
)
def test_frame_parts_put_together_give_the_wire_frame(
    rows: int, width: int, size: int, seed: bytes
) -> None:
    points = (seed * (rows * 2 * 33))[: rows * 2 * 33]
    ciphers = (bytes(range(256)) * (rows * width * 2))[: rows * width * 512]
    whole = RowSet("q1", "dcf", ("DCF",), rows, 2, width, 512, points, ciphers)
    wire = whole.to_bytes()
    assert whole.frame_size() == len(wire)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "rows.ctly"
        path.write_bytes(wire)
        spooled = RowSet.from_file(path)
        for source in (whole, spooled):
            parts = list(source.frame_parts(size))
            assert b"".join(parts) == wire
            assert len(parts) == -(-len(wire) // size)
            assert all(len(p) == size for p in parts[:-1]) and 0 < len(parts[-1]) <= size
        assert spooled.spool_path == path
        spooled.close()
    assert whole.spool_path is None


def test_any_flipped_byte_in_a_sealed_envelope_is_rejected() -> None:
    alice, bob = PartyKeys.generate(), PartyKeys.generate()
    payload = rowset().to_bytes()
    ctx = {"sender": "DCF", "recipient": "JJ", "query_id": "q1", "step": "rows"}
    sealed = seal(payload, keys=alice, to=bob.public, **ctx)
    opened = open_sealed(sealed, frm=alice.public, keys=bob, **ctx)
    assert opened == payload
    for i in range(0, len(sealed), 7):
        with pytest.raises(EnvelopeError, match="failed authentication"):
            open_sealed(flip_byte(sealed, i), frm=alice.public, keys=bob, **ctx)


@pytest.mark.parametrize(
    ("field", "value"),
    [("query_id", "q2"), ("step", "result"), ("sender", "DOC"), ("recipient", "DSS")],
)
def test_an_envelope_replayed_into_another_context_is_rejected(field: str, value: str) -> None:
    alice, bob = PartyKeys.generate(), PartyKeys.generate()
    ctx = {"sender": "DCF", "recipient": "JJ", "query_id": "q1", "step": "rows"}
    sealed = seal(b"x", keys=alice, to=bob.public, **ctx)
    ctx[field] = value
    with pytest.raises(EnvelopeError):
        open_sealed(sealed, frm=alice.public, keys=bob, **ctx)
