"""protocol.paillier with real 2048-bit keys: round trips, homomorphism, tampering, packing."""

from __future__ import annotations

import dataclasses
import pickle
from collections import Counter

import gmpy2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phe import paillier as phe_paillier

from protocol.errors import (
    InvalidSpec,
    KeyMismatch,
    MalformedMessage,
    ProtocolError,
    ProtocolStateError,
)
from protocol.paillier import (
    Ciphertext,
    Encryptor,
    MixedRadix,
    OneHotPacking,
    PrivateKey,
    PublicKey,
    ciphertexts_from_bytes,
    ciphertexts_to_bytes,
    generate_keypair,
    sum_ciphertexts,
)


def flip_byte(original: bytes, byte_offset: int) -> bytes:
    """PyNaCl's tamper helper: flip the low bit of one byte."""
    return (
        original[:byte_offset] + bytes([0x01 ^ original[byte_offset]]) + original[byte_offset + 1 :]
    )


@pytest.fixture(scope="module")
def keypair() -> tuple[PublicKey, PrivateKey]:
    return generate_keypair(2048)


@pytest.fixture(scope="module")
def pk(keypair: tuple[PublicKey, PrivateKey]) -> PublicKey:
    return keypair[0]


@pytest.fixture(scope="module")
def sk(keypair: tuple[PublicKey, PrivateKey]) -> PrivateKey:
    return keypair[1]


@pytest.fixture(scope="module")
def enc(pk: PublicKey) -> Encryptor:
    return Encryptor(pk)


@pytest.fixture(scope="module")
def other_key() -> tuple[PublicKey, int, int]:
    """A second real key (the mismatch and destroy tests need one); primes kept for PrivateKey."""
    phe_public, phe_private = phe_paillier.generate_paillier_keypair(n_length=2048)
    return PublicKey(phe_public.n), phe_private.p, phe_private.q


def test_keygen_refuses_short_and_odd_moduli() -> None:
    with pytest.raises(InvalidSpec, match="at least 2048"):
        generate_keypair(1024)
    with pytest.raises(InvalidSpec, match="even"):
        generate_keypair(2049)


def test_key_shape(pk: PublicKey) -> None:
    assert pk.n_bits == 2048
    assert pk.nsquare == pk.n * pk.n
    assert pk.ciphertext_bytes == 512
    assert len(pk.fingerprint) == 32


@pytest.mark.parametrize("m", [0, 1, 2, 12345, -1, -987654321])
def test_round_trip(pk: PublicKey, sk: PrivateKey, enc: Encryptor, m: int) -> None:
    c = enc.encrypt(m)
    assert sk.decrypt(c) == m % pk.n
    assert sk.decrypt_signed(c) == m
    back = Ciphertext.from_bytes(c.to_bytes(), pk)
    assert back == c
    assert sk.decrypt_signed(back) == m


def test_round_trip_extremes(pk: PublicKey, sk: PrivateKey, enc: Encryptor) -> None:
    assert sk.decrypt(enc.encrypt(pk.n - 1)) == pk.n - 1
    assert sk.decrypt_signed(enc.encrypt(pk.n - 1)) == -1
    assert sk.decrypt_signed(enc.encrypt(pk.n // 2)) == pk.n // 2
    for m in (pk.n, -pk.n):
        with pytest.raises(InvalidSpec, match="out of range"):
            enc.encrypt(m)


def test_phe_decrypts_our_ciphertexts_and_we_decrypt_phes(pk: PublicKey, sk: PrivateKey) -> None:
    # phe's own decrypt path (EncryptedNumber with exponent 0) agrees with ours.
    phe_public = phe_paillier.PaillierPublicKey(pk.n)
    c = Encryptor(pk).encrypt(4242)
    assert sk._phe.decrypt(phe_paillier.EncryptedNumber(phe_public, c.value)) == 4242
    theirs = phe_public.raw_encrypt(77)
    assert sk.decrypt(Ciphertext.from_bytes(theirs.to_bytes(512, "big"), pk)) == 77


def test_textbook_mode(pk: PublicKey, sk: PrivateKey) -> None:
    textbook = Encryptor(pk, exponent_bits=None)
    c = textbook.encrypt(-5)
    assert sk.decrypt_signed(c) == -5
    assert sk.decrypt_signed(textbook.rerandomize(c)) == -5


def test_homomorphic_sum_of_many(pk: PublicKey, sk: PrivateKey, enc: Encryptor) -> None:
    values = [3, 0, 17, -4, 1000, 1, -1, 250] * 8
    cs = enc.encrypt_many(values)
    assert sk.decrypt_signed(sum_ciphertexts(cs, pk)) == sum(values)
    total = cs[0]
    for c in cs[1:]:
        total = total + c
    assert total == sum_ciphertexts(cs, pk)
    empty = sum_ciphertexts([], pk)
    assert empty.value == 1  # trivial Enc(0): the caller must re-randomize it
    assert sk.decrypt(enc.rerandomize(empty)) == 0
    assert enc.rerandomize(empty).value != 1


def test_add_plain_and_mul_plain(pk: PublicKey, sk: PrivateKey, enc: Encryptor) -> None:
    c = enc.encrypt(21)
    assert sk.decrypt(c.add_plain(21)) == 42
    assert sk.decrypt_signed(c.add_plain(-30)) == -9
    assert sk.decrypt(c.mul_plain(3)) == 63
    assert sk.decrypt_signed(c.mul_plain(-2)) == -42
    assert c.mul_plain(0).value == 1
    assert sk.decrypt_signed(enc.encrypt(7) + enc.encrypt(10).mul_plain(-1)) == -3


def test_rerandomize_changes_bytes_not_plaintext(sk: PrivateKey, enc: Encryptor) -> None:
    c = enc.encrypt(99)
    fresh = enc.rerandomize_many([c, c])
    assert len({c.to_bytes(), fresh[0].to_bytes(), fresh[1].to_bytes()}) == 3
    assert [sk.decrypt(f) for f in fresh] == [99, 99]
    assert enc.encrypt(99) != enc.encrypt(99)


def test_rerandomize_flips_jacobi_symbol(pk: PublicKey, enc: Encryptor) -> None:
    # r0 has Jacobi symbol -1, so a shuffle does not carry this public bit through.
    c = enc.encrypt(1)
    symbols = {gmpy2.jacobi(enc.rerandomize(c).value, pk.n) for _ in range(40)}
    assert symbols == {-1, 1}


def test_known_answer_with_injected_randomness(pk: PublicKey, sk: PrivateKey) -> None:
    n, nsq = pk.n, pk.nsquare
    r0 = next(r for r in range(2, 1000) if gmpy2.jacobi(r, n) == -1)
    xs = iter([(1 << 511) + 12345, 0xC0FFEE, (1 << 512) - 1])
    kat = Encryptor(pk, randbits=lambda bits: next(xs), r0=r0)
    h = pow(r0, n, nsq)
    m = 31337
    assert kat.encrypt(m).value == (1 + m * n) * pow(h, (1 << 511) + 12345, nsq) % nsq
    c = Ciphertext(1 + 5 * n, pk)  # the trivial Enc(5)
    assert kat.rerandomize(c).value == (1 + 5 * n) * pow(h, 0xC0FFEE, nsq) % nsq
    assert sk.decrypt(kat.encrypt(-2)) == n - 2
    with pytest.raises(InvalidSpec, match="Jacobi"):
        Encryptor(pk, r0=next(r for r in range(2, 1000) if gmpy2.jacobi(r, n) == 1))


def test_injected_randbits_out_of_range_is_refused(pk: PublicKey) -> None:
    r0 = next(r for r in range(2, 1000) if gmpy2.jacobi(r, pk.n) == -1)
    bad = Encryptor(pk, randbits=lambda bits: 1 << bits, r0=r0)
    with pytest.raises(InvalidSpec, match="randbits"):
        bad.encrypt(1)


def test_exponent_bits_bounds(pk: PublicKey) -> None:
    with pytest.raises(InvalidSpec, match="exponent_bits"):
        Encryptor(pk, exponent_bits=128)


def test_state_rebuilds_an_equivalent_encryptor(pk: PublicKey, sk: PrivateKey) -> None:
    original = Encryptor(pk)
    rebuilt = Encryptor.from_state(pk, original.state())
    assert rebuilt.state() == original.state()
    assert sk.decrypt(rebuilt.encrypt(8)) == 8
    unpickled = pickle.loads(pickle.dumps(original))
    assert unpickled.state() == original.state()
    assert sk.decrypt(unpickled.encrypt(9)) == 9
    textbook = Encryptor.from_state(pk, Encryptor(pk, exponent_bits=None).state())
    assert textbook.exponent_bits is None
    state = original.state()
    for bad in (state[:-1], state + b"\x00", state[:20]):
        with pytest.raises(MalformedMessage):
            Encryptor.from_state(pk, bad)
    with pytest.raises(KeyMismatch):
        Encryptor.from_state(pk, flip_byte(state, 0))


def test_mixing_keys_raises(
    pk: PublicKey, sk: PrivateKey, enc: Encryptor, other_key: tuple[PublicKey, int, int]
) -> None:
    other_pk = other_key[0]
    ours, theirs = enc.encrypt(1), Encryptor(other_pk).encrypt(1)
    assert other_pk != pk and other_pk.fingerprint != pk.fingerprint
    with pytest.raises(KeyMismatch):
        _ = ours + theirs
    with pytest.raises(KeyMismatch):
        sum_ciphertexts([ours, theirs], pk)
    with pytest.raises(KeyMismatch):
        sk.decrypt(theirs)
    with pytest.raises(KeyMismatch):
        enc.rerandomize(theirs)
    with pytest.raises(KeyMismatch):
        ciphertexts_to_bytes([ours, theirs])
    with pytest.raises(KeyMismatch):
        Encryptor.from_state(pk, Encryptor(other_pk).state())


def test_destroyed_key_refuses_decryption(
    other_key: tuple[PublicKey, int, int],
) -> None:
    other_pk, p, q = other_key
    key = PrivateKey(other_pk, p, q)
    c = Encryptor(other_pk).encrypt(5)
    assert key.decrypt(c) == 5
    key.destroy()
    assert key.destroyed
    for decrypt in (key.decrypt, key.decrypt_signed):
        with pytest.raises(ProtocolStateError, match="destroyed"):
            decrypt(c)
    key.destroy()  # idempotent
    with pytest.raises(InvalidSpec):
        PrivateKey(other_pk, p, q + 2)


def test_public_key_round_trip_and_validation(pk: PublicKey) -> None:
    data = pk.to_bytes()
    assert len(data) == 2 + 256
    assert PublicKey.from_bytes(data) == pk
    assert pickle.loads(pickle.dumps(pk)) == pk
    even = data[:-1] + bytes([data[-1] & 0xFE])
    short = (255).to_bytes(2, "big") + ((pk.n >> 8) | 1).to_bytes(255, "big")
    for bad, why in [
        (b"", "too short"),
        (data[:-1], "header says"),
        (data + b"\x00", "header says"),
        (even, "even"),
        (short, "at least 2048"),
        ((257).to_bytes(2, "big") + b"\x00" + data[2:], "minimally encoded"),
    ]:
        with pytest.raises(MalformedMessage, match=why):
            PublicKey.from_bytes(bad)


@pytest.mark.parametrize("offset", [0, 1, 2, 100, 257])
def test_tampered_public_key_is_rejected_or_is_another_key(
    pk: PublicKey, sk: PrivateKey, enc: Encryptor, offset: int
) -> None:
    try:
        tampered = PublicKey.from_bytes(flip_byte(pk.to_bytes(), offset))
    except MalformedMessage:
        return
    assert tampered.fingerprint != pk.fingerprint
    # Our ciphertext either fails validation under the forged key or is refused by ours.
    with pytest.raises((MalformedMessage, KeyMismatch)):
        sk.decrypt(Ciphertext.from_bytes(enc.encrypt(1).to_bytes(), tampered))


@pytest.mark.parametrize("offset", [0, 1, 255, 256, 511])
def test_tampered_ciphertext_is_rejected_or_decrypts_differently(
    pk: PublicKey, sk: PrivateKey, enc: Encryptor, offset: int
) -> None:
    c = enc.encrypt(424242)
    try:
        tampered = Ciphertext.from_bytes(flip_byte(c.to_bytes(), offset), pk)
    except MalformedMessage:
        return
    assert sk.decrypt(tampered) != 424242


def test_ciphertext_validation_messages(pk: PublicKey, enc: Encryptor) -> None:
    data = enc.encrypt(3).to_bytes()
    with pytest.raises(MalformedMessage, match="ciphertext is 511 bytes, expected 512"):
        Ciphertext.from_bytes(data[1:], pk)
    with pytest.raises(MalformedMessage, match="ciphertext is 513 bytes, expected 512"):
        Ciphertext.from_bytes(data + b"\x00", pk)
    with pytest.raises(MalformedMessage, match=r"not in \(0, n\^2\)"):
        Ciphertext.from_bytes(bytes(512), pk)
    with pytest.raises(MalformedMessage, match=r"not in \(0, n\^2\)"):
        Ciphertext.from_bytes(pk.nsquare.to_bytes(512, "big"), pk)
    with pytest.raises(MalformedMessage, match="not a unit mod n\\^2"):
        Ciphertext.from_bytes((pk.n * 7).to_bytes(512, "big"), pk)
    with pytest.raises(dataclasses.FrozenInstanceError):
        enc.encrypt(1).value = 5  # type: ignore[misc]


def test_batch_serialization(pk: PublicKey, sk: PrivateKey, enc: Encryptor) -> None:
    cs = enc.encrypt_many([1, 2, 3])
    data = ciphertexts_to_bytes(cs)
    assert len(data) == 3 * 512
    assert ciphertexts_from_bytes(data, pk) == cs
    assert ciphertexts_to_bytes([]) == b""
    assert ciphertexts_from_bytes(b"", pk) == []
    with pytest.raises(MalformedMessage, match="not a multiple of 512"):
        ciphertexts_from_bytes(data[:-1], pk)
    bad = data[:512] + bytes(512) + data[1024:]
    with pytest.raises(MalformedMessage, match="ciphertext 1 of 3"):
        ciphertexts_from_bytes(bad, pk)


# --- group codes and packing -------------------------------------------------------------


@st.composite
def radices_and_digits(draw: st.DrawFn) -> tuple[list[int], list[int]]:
    radices = draw(st.lists(st.integers(1, 12), max_size=6))
    digits = [draw(st.integers(0, r - 1)) for r in radices]
    return radices, digits


@given(radices_and_digits())
def test_mixed_radix_round_trip(case: tuple[list[int], list[int]]) -> None:
    radices, digits = case
    mr = MixedRadix(radices)
    code = mr.encode(digits)
    assert 0 <= code < mr.size
    assert mr.decode(code) == tuple(digits)
    assert code == sum(d * mr.place_value(i) for i, d in enumerate(digits))


def test_mixed_radix_order_and_errors() -> None:
    mr = MixedRadix([2, 3, 4])
    assert mr.size == 24
    assert [mr.place_value(i) for i in range(3)] == [12, 4, 1]
    codes = [mr.encode((a, b, c)) for a in range(2) for b in range(3) for c in range(4)]
    assert codes == list(range(24))
    for bad_call in (
        lambda: MixedRadix([3, 0]),
        lambda: mr.encode((1, 2)),
        lambda: mr.encode((1, 3, 0)),
        lambda: mr.decode(24),
        lambda: mr.place_value(3),
    ):
        with pytest.raises(InvalidSpec):
            bad_call()


@settings(max_examples=60)
@given(
    slots=st.integers(1, 40),
    indices=st.lists(st.integers(0, 10**6), max_size=60),
    n_bits=st.integers(16, 300),
)
def test_one_hot_packing_sum_decodes_to_histogram(
    slots: int, indices: list[int], n_bits: int
) -> None:
    rows = [i % slots for i in indices]
    max_count = max(Counter(rows).values(), default=0)
    if max(1, max_count.bit_length()) > n_bits - 2:
        return
    packing = OneHotPacking.for_capacity(slots, max_count, n_bits)
    assert packing.per_ciphertext * packing.slot_bits <= n_bits - 2
    total = [0] * packing.ciphertexts
    for row in rows:
        total = [a + b for a, b in zip(total, packing.encode(row), strict=True)]
    assert all(value < 1 << (n_bits - 2) for value in total)
    expected = Counter(rows)
    assert packing.decode(total) == [expected[i] for i in range(slots)]


def test_one_hot_packing_shapes_and_overflow() -> None:
    packing = OneHotPacking(slots=5, slot_bits=700, n_bits=2048)
    assert (packing.per_ciphertext, packing.ciphertexts) == (2, 3)
    assert packing.encode(3) == [0, 1 << 700, 0]
    assert packing.encode(4) == [0, 0, 1]
    with pytest.raises(ProtocolError, match="overflowed"):
        packing.decode([0, 0, 1 << 700])  # the last plaintext has only one slot
    small = OneHotPacking.for_capacity(slots=2, max_count=3, n_bits=64)
    assert small.slot_bits == 2
    with pytest.raises(ProtocolError, match="overflowed"):
        small.decode([4 << 2])
    for bad_call in (
        lambda: OneHotPacking(0, 8, 2048),
        lambda: OneHotPacking(3, 2047, 2048),
        lambda: packing.encode(5),
        lambda: packing.decode([0, 0]),
    ):
        with pytest.raises(InvalidSpec):
            bad_call()


def test_packed_histogram_under_encryption(pk: PublicKey, sk: PrivateKey, enc: Encryptor) -> None:
    rows = [0, 4, 4, 1, 4, 2, 0, 4]
    packing = OneHotPacking.for_capacity(slots=5, max_count=len(rows), n_bits=pk.n_bits)
    encrypted = [enc.encrypt_many(packing.encode(r)) for r in rows]
    sums = [sum_ciphertexts([row[j] for row in encrypted], pk) for j in range(packing.ciphertexts)]
    assert packing.decode([sk.decrypt(s) for s in sums]) == [2, 1, 1, 0, 4]
