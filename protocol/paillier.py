"""Paillier keys, ciphertexts, fast fixed-base encryption and group-code packing for tallies.

Fast encryption. Textbook Paillier encrypts m as (1 + m*n) * r^n mod n^2 with a
fresh random unit r: one 2048-bit exponentiation mod n^2 (about 10 ms). An
`Encryptor` instead picks one random unit r0 once, sets h = r0^n mod n^2 (a
random n-th residue, so h^x is an encryption of 0 for every x) and encrypts as
(1 + m*n) * h^x with a fresh 512-bit x, using a fixed-base table for h (11-bit windows): 47
multiplications mod n^2. This is the "short exponent" Paillier randomness that
Ma, Han and Lei analyse ("Optimized Paillier's Cryptosystem with Fast Encryption
and Decryption", ACSAC 2021); they use 448-bit exponents for 112-bit security at
2048-bit n. Their proof assumes their own key structure (primes chosen so that h
has order about 2^448); phe's keys are ordinary, so here we rely on the
short-exponent assumption itself: h^x with x below 2^512 is indistinguishable
from a random n-th residue (recovering x from h^x costs about 2^256 group
operations with the best generic method). r0 is chosen with
Jacobi symbol -1 so that re-randomizing flips a ciphertext's publicly computable
Jacobi symbol at random (with symbol +1 a shuffle would keep one linkable bit per
row). Deployments that want the textbook assumption pass `exponent_bits=None`:
every encryption and re-randomization then uses a fresh uniform r^n (textbook
cost).
"""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import gmpy2
from phe import paillier as phe_paillier

from protocol.errors import (
    InvalidSpec,
    KeyMismatch,
    MalformedMessage,
    ProtocolError,
    ProtocolStateError,
)

MIN_N_BITS = 2048
MAX_N_BYTES = 1024  # 8192-bit n: refuse absurd sizes before doing arithmetic on them
MIN_EXPONENT_BITS = 448  # Ma, Han and Lei's figure for 112-bit security at 2048-bit n
_WINDOW = 11  # fixed-base table window: 47 rows of 2048 powers for a 512-bit exponent
_FINGERPRINT_CONTEXT = b"crosstally/paillier-public-key/v1\x00"

Mpz = Any  # gmpy2 ships no type stubs


def _n_problem(n: int) -> str | None:
    if n % 2 == 0:
        return "modulus n is even"
    if n.bit_length() < MIN_N_BITS:
        return f"modulus n has {n.bit_length()} bits, at least {MIN_N_BITS} are required"
    if n.bit_length() > 8 * MAX_N_BYTES:
        return f"modulus n has {n.bit_length()} bits, at most {8 * MAX_N_BYTES} are allowed"
    return None


class PublicKey:
    """A Paillier public key (n, g = n + 1); the fingerprint names it in every ciphertext."""

    __slots__ = ("_phe", "ciphertext_bytes", "fingerprint", "n", "n_bits", "nsquare")

    def __init__(self, n: int) -> None:
        problem = _n_problem(n)
        if problem is not None:
            raise InvalidSpec(f"invalid Paillier public key: {problem}")
        self.n = n
        self.nsquare = n * n
        self.n_bits = n.bit_length()
        self.ciphertext_bytes = (self.nsquare.bit_length() + 7) // 8
        self._phe = phe_paillier.PaillierPublicKey(n)
        self.fingerprint = hashlib.sha256(_FINGERPRINT_CONTEXT + self.to_bytes()).digest()

    def to_bytes(self) -> bytes:
        """Two-byte big-endian length L, then n in L big-endian bytes."""
        length = (self.n_bits + 7) // 8
        return length.to_bytes(2, "big") + self.n.to_bytes(length, "big")

    @classmethod
    def from_bytes(cls, data: bytes) -> PublicKey:
        if len(data) < 2:
            raise MalformedMessage(f"public key is {len(data)} bytes, too short for its header")
        length = int.from_bytes(data[:2], "big")
        if len(data) != 2 + length:
            raise MalformedMessage(f"public key is {len(data)} bytes, header says {2 + length}")
        if length == 0 or data[2] == 0:
            raise MalformedMessage("public key modulus is not minimally encoded")
        n = int.from_bytes(data[2:], "big")
        problem = _n_problem(n)
        if problem is not None:
            raise MalformedMessage(f"public key rejected: {problem}")
        return cls(n)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PublicKey) and other.fingerprint == self.fingerprint

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> tuple[type[PublicKey], tuple[int]]:
        return (PublicKey, (self.n,))

    def __repr__(self) -> str:
        return f"PublicKey({self.n_bits} bits, fingerprint {self.fingerprint.hex()[:16]})"


@dataclass(frozen=True, slots=True, repr=False)
class Ciphertext:
    """An immutable Paillier ciphertext bound to its public key.

    The constructor checks only the range; use `from_bytes` for untrusted input.
    """

    value: int
    public_key: PublicKey

    def __post_init__(self) -> None:
        if type(self.value) is not int:  # phe's decryption accepts only int (not gmpy2.mpz)
            object.__setattr__(self, "value", int(self.value))
        if not 0 < self.value < self.public_key.nsquare:
            raise MalformedMessage("ciphertext is not in (0, n^2): tampered or for another key")

    @property
    def fingerprint(self) -> bytes:
        return self.public_key.fingerprint

    def _same_key(self, other: Ciphertext) -> None:
        if other.public_key is not self.public_key and other.fingerprint != self.fingerprint:
            raise KeyMismatch("cannot combine ciphertexts under different Paillier public keys")

    def __add__(self, other: object) -> Ciphertext:
        if not isinstance(other, Ciphertext):
            return NotImplemented
        self._same_key(other)
        product = gmpy2.mpz(self.value) * other.value % self.public_key.nsquare
        return Ciphertext(int(product), self.public_key)

    def add_plain(self, k: int) -> Ciphertext:
        """Enc(m) -> Enc(m + k mod n); keeps this ciphertext's randomness."""
        pk = self.public_key
        return Ciphertext(int(gmpy2.mpz(self.value) * (1 + k % pk.n * pk.n) % pk.nsquare), pk)

    def mul_plain(self, k: int) -> Ciphertext:
        """Enc(m) -> Enc(k*m mod n). k = 0 gives the trivial Enc(0) = 1: re-randomize it."""
        pk = self.public_key
        return Ciphertext(int(gmpy2.powmod(self.value, k % pk.n, pk.nsquare)), pk)

    def to_bytes(self) -> bytes:
        return self.value.to_bytes(self.public_key.ciphertext_bytes, "big")

    @classmethod
    def from_bytes(cls, data: bytes, public_key: PublicKey) -> Ciphertext:
        expected = public_key.ciphertext_bytes
        if len(data) != expected:
            raise MalformedMessage(f"ciphertext is {len(data)} bytes, expected {expected}")
        value = int.from_bytes(data, "big")
        if not 0 < value < public_key.nsquare:
            raise MalformedMessage("ciphertext is not in (0, n^2): tampered or for another key")
        if gmpy2.gcd(value, public_key.n) != 1:
            raise MalformedMessage("ciphertext is not a unit mod n^2: tampered or for another key")
        return cls(value, public_key)

    def __repr__(self) -> str:
        return f"Ciphertext(key {self.fingerprint.hex()[:16]}, {self.value.bit_length()} bits)"


def sum_ciphertexts(items: Iterable[Ciphertext], public_key: PublicKey) -> Ciphertext:
    """Homomorphic sum. The empty sum is the trivial Enc(0) = 1: re-randomize before sending."""
    nsquare = gmpy2.mpz(public_key.nsquare)
    acc = gmpy2.mpz(1)
    for c in items:
        if c.public_key is not public_key and c.fingerprint != public_key.fingerprint:
            raise KeyMismatch("cannot sum ciphertexts under different Paillier public keys")
        acc = acc * c.value % nsquare
    return Ciphertext(int(acc), public_key)


def ciphertexts_to_bytes(cs: Sequence[Ciphertext]) -> bytes:
    """Concatenated fixed-size blocks; all ciphertexts must share one key."""
    if cs:
        fingerprint = cs[0].fingerprint
        if any(c.fingerprint != fingerprint for c in cs):
            raise KeyMismatch("cannot serialize ciphertexts under different keys in one batch")
    return b"".join(c.to_bytes() for c in cs)


def ciphertexts_from_bytes(data: bytes, public_key: PublicKey) -> list[Ciphertext]:
    size = public_key.ciphertext_bytes
    if len(data) % size:
        raise MalformedMessage(f"ciphertext batch is {len(data)} bytes, not a multiple of {size}")
    count = len(data) // size
    out = []
    for i in range(count):
        try:
            out.append(Ciphertext.from_bytes(data[i * size : (i + 1) * size], public_key))
        except MalformedMessage as exc:
            raise MalformedMessage(f"ciphertext {i} of {count}: {exc}") from None
    return out


class PrivateKey:
    """A Paillier private key (CRT decryption via phe); `destroy()` ends its use."""

    __slots__ = ("_phe", "public_key")

    def __init__(self, public_key: PublicKey, p: int, q: int) -> None:
        if p * q != public_key.n or p in (1, public_key.n):
            raise InvalidSpec("private key primes do not factor the public key's n")
        self.public_key = public_key
        self._phe: Any = phe_paillier.PaillierPrivateKey(public_key._phe, p, q)

    @property
    def destroyed(self) -> bool:
        return self._phe is None

    def decrypt(self, c: Ciphertext) -> int:
        """The raw plaintext in [0, n)."""
        if self._phe is None:
            raise ProtocolStateError("this private key was destroyed; it cannot decrypt")
        if c.fingerprint != self.public_key.fingerprint:
            raise KeyMismatch("ciphertext was made under another Paillier public key")
        return int(self._phe.raw_decrypt(c.value))

    def decrypt_signed(self, c: Ciphertext) -> int:
        """The plaintext in (-n/2, n/2]: values above n // 2 stand for value - n."""
        value = self.decrypt(c)
        return value - self.public_key.n if value > self.public_key.n // 2 else value

    def to_bytes(self) -> bytes:
        """The smaller prime p, big-endian, for a holder that must encrypt it at rest."""
        if self._phe is None:
            raise ProtocolStateError("this private key was destroyed; it cannot be exported")
        p = min(int(self._phe.p), int(self._phe.q))
        return p.to_bytes((p.bit_length() + 7) // 8, "big")

    @classmethod
    def from_bytes(cls, public_key: PublicKey, data: bytes) -> PrivateKey:
        """Rebuild from `to_bytes()`; q is n / p. Refuses a p that does not divide n."""
        p = int.from_bytes(data, "big")
        if p <= 1 or public_key.n % p:
            raise MalformedMessage("private key bytes do not hold a factor of the public key's n")
        return cls(public_key, p, public_key.n // p)

    def destroy(self) -> None:
        """Drop the secret numbers. Python cannot wipe memory; this removes every reference."""
        if self._phe is not None:
            for name in ("p", "q", "psquare", "qsquare", "p_inverse", "hp", "hq"):
                setattr(self._phe, name, 0)
            self._phe = None

    def __repr__(self) -> str:
        state = "destroyed" if self._phe is None else "live"
        return f"PrivateKey({state}, for {self.public_key!r})"


def generate_keypair(n_bits: int = MIN_N_BITS) -> tuple[PublicKey, PrivateKey]:
    if n_bits < MIN_N_BITS:
        raise InvalidSpec(f"Paillier modulus of {n_bits} bits refused; use at least {MIN_N_BITS}")
    if n_bits % 2 or n_bits > 8 * MAX_N_BYTES:
        raise InvalidSpec(f"Paillier modulus size must be even and at most {8 * MAX_N_BYTES} bits")
    phe_public, phe_private = phe_paillier.generate_paillier_keypair(n_length=n_bits)
    public_key = PublicKey(int(phe_public.n))
    return public_key, PrivateKey(public_key, int(phe_private.p), int(phe_private.q))


class Encryptor:
    """Fast encryption and re-randomization under one public key (see the module docstring).

    `randbits` and `r0` are test hooks for known-answer tests; leave them unset otherwise.
    The table for h is built lazily on first use, so `from_state` is cheap in a worker.
    """

    def __init__(
        self,
        public_key: PublicKey,
        *,
        exponent_bits: int | None = 512,
        randbits: Callable[[int], int] | None = None,
        r0: int | None = None,
        _h: int | None = None,
    ) -> None:
        if exponent_bits is not None and not (
            MIN_EXPONENT_BITS <= exponent_bits <= public_key.n_bits
        ):
            raise InvalidSpec(
                f"exponent_bits={exponent_bits} refused: use {MIN_EXPONENT_BITS}.."
                f"{public_key.n_bits}, or None for textbook randomness"
            )
        if exponent_bits is None and (r0 is not None or _h is not None):
            raise InvalidSpec("r0 has no meaning with exponent_bits=None (fresh r every time)")
        self.public_key = public_key
        self.exponent_bits = exponent_bits
        self._randbits = randbits if randbits is not None else secrets.randbits
        self._n = gmpy2.mpz(public_key.n)
        self._nsquare = gmpy2.mpz(public_key.nsquare)
        self._table: list[list[Mpz]] | None = None
        self._h: int | None = None
        if exponent_bits is None:
            return
        if _h is None:
            if r0 is None:
                r0 = self._random_unit(need_jacobi_minus_one=True)
            elif math.gcd(r0, public_key.n) != 1 or gmpy2.jacobi(r0, self._n) != -1:
                raise InvalidSpec("r0 must be a unit mod n with Jacobi symbol -1")
            _h = int(gmpy2.powmod(r0, self._n, self._nsquare))
        self._h = _h

    def _random_unit(self, *, need_jacobi_minus_one: bool = False) -> int:
        n = self.public_key.n
        for _ in range(128):  # a real source fails this with probability about 2^-128
            r = self._randbits(self.public_key.n_bits + 64) % n
            if r <= 1 or math.gcd(r, n) != 1:
                continue
            if not need_jacobi_minus_one or gmpy2.jacobi(r, self._n) == -1:
                return r
        raise InvalidSpec("the randomness source produced no usable unit mod n")

    def state(self) -> bytes:
        """Key fingerprint, exponent size and h: enough to rebuild this Encryptor in a worker."""
        bits = 0 if self.exponent_bits is None else self.exponent_bits
        h = b"" if self._h is None else self._h.to_bytes(self.public_key.ciphertext_bytes, "big")
        return self.public_key.fingerprint + bits.to_bytes(2, "big") + h

    @classmethod
    def from_state(cls, public_key: PublicKey, state: bytes) -> Encryptor:
        """Rebuild from `state()`. The state must come from a trusted party (h is unverifiable)."""
        if len(state) < 34:
            raise MalformedMessage(f"encryptor state is {len(state)} bytes, too short")
        if state[:32] != public_key.fingerprint:
            raise KeyMismatch("encryptor state was made for another Paillier public key")
        bits = int.from_bytes(state[32:34], "big")
        h_bytes = state[34:]
        if bits == 0 and not h_bytes:
            return cls(public_key, exponent_bits=None)
        if len(h_bytes) != public_key.ciphertext_bytes:
            raise MalformedMessage(f"encryptor state is {len(state)} bytes: truncated or padded")
        h = int.from_bytes(h_bytes, "big")
        if not 0 < h < public_key.nsquare or gmpy2.jacobi(h, public_key.n) != -1:
            raise MalformedMessage("encryptor state holds no valid h for this key")
        return cls(public_key, exponent_bits=bits, _h=h)

    def __reduce__(self) -> tuple[Callable[[PublicKey, bytes], Encryptor], tuple[PublicKey, bytes]]:
        return (Encryptor.from_state, (self.public_key, self.state()))

    def build_table(self) -> None:
        """Build the fixed-base table for h now (otherwise it is built on first use)."""
        if self._table is not None or self._h is None or self.exponent_bits is None:
            return
        nsquare = self._nsquare
        rows = -(-self.exponent_bits // _WINDOW)
        base = gmpy2.mpz(self._h)
        table: list[list[Mpz]] = []
        for _ in range(rows):
            row = [gmpy2.mpz(1), base]
            for _ in range(2, 1 << _WINDOW):
                row.append(row[-1] * base % nsquare)
            table.append(row)
            base = row[-1] * base % nsquare  # h^(2^(w(i+1)))
        self._table = table

    def _encryption_of_zero(self) -> Mpz:
        """A fresh h^x (or r^n in textbook mode): a random encryption of 0."""
        if self.exponent_bits is None:
            return gmpy2.powmod(self._random_unit(), self._n, self._nsquare)
        x = self._randbits(self.exponent_bits)
        if not 0 <= x < 1 << self.exponent_bits:
            raise InvalidSpec(f"randbits returned a value outside [0, 2^{self.exponent_bits})")
        self.build_table()
        assert self._table is not None
        table, nsquare = self._table, self._nsquare
        acc = gmpy2.mpz(1)
        mask = (1 << _WINDOW) - 1
        for row in table:
            digit = x & mask
            if digit:
                acc = acc * row[digit] % nsquare
            x >>= _WINDOW
        return acc

    def encrypt(self, m: int) -> Ciphertext:
        """Enc(m) for -n < m < n; negative m is reduced mod n (decrypt_signed recovers it)."""
        n = self.public_key.n
        if not -n < m < n:
            raise InvalidSpec("plaintext out of range: need -n < m < n")
        nude = 1 + (m % n) * n
        return Ciphertext(int(nude * self._encryption_of_zero() % self._nsquare), self.public_key)

    def encrypt_many(self, ms: Sequence[int]) -> list[Ciphertext]:
        return [self.encrypt(m) for m in ms]

    def rerandomize(self, c: Ciphertext) -> Ciphertext:
        """Same plaintext, fresh randomness: do this to every ciphertext that leaves a party."""
        if c.fingerprint != self.public_key.fingerprint:
            raise KeyMismatch("cannot re-randomize a ciphertext made under another public key")
        return Ciphertext(int(c.value * self._encryption_of_zero() % self._nsquare), c.public_key)

    def rerandomize_many(self, cs: Sequence[Ciphertext]) -> list[Ciphertext]:
        return [self.rerandomize(c) for c in cs]


class MixedRadix:
    """Group codes: digits d_i < radices[i] packed into one integer, first digit most significant.

    Codes sort like the digit tuples, and each party can contribute
    digit * place_value(i) for its own attributes; the sum is the full code.
    """

    def __init__(self, radices: Sequence[int]) -> None:
        if any(r < 1 for r in radices):
            raise InvalidSpec(f"every radix must be at least 1, got {list(radices)}")
        self.radices = tuple(radices)
        self._places = [math.prod(self.radices[i + 1 :]) for i in range(len(self.radices))]
        self.size = math.prod(self.radices)

    def place_value(self, i: int) -> int:
        if not 0 <= i < len(self.radices):
            raise InvalidSpec(f"digit position {i} out of range for {len(self.radices)} digits")
        return self._places[i]

    def encode(self, digits: Sequence[int]) -> int:
        if len(digits) != len(self.radices):
            raise InvalidSpec(f"expected {len(self.radices)} digits, got {len(digits)}")
        for i, (d, r) in enumerate(zip(digits, self.radices, strict=True)):
            if not 0 <= d < r:
                raise InvalidSpec(f"digit {i} is {d}, must be in [0, {r})")
        return sum(d * p for d, p in zip(digits, self._places, strict=True))

    def decode(self, code: int) -> tuple[int, ...]:
        if not 0 <= code < self.size:
            raise InvalidSpec(f"group code {code} out of range [0, {self.size})")
        return tuple(code // p % r for p, r in zip(self._places, self.radices, strict=True))


class OneHotPacking:
    """A histogram packed into plaintexts: slot i is bits [i*b, (i+1)*b) of one plaintext.

    Summing encrypted one-hot vectors adds counts slot-wise. The caller must make
    every count fit: max_count < 2^slot_bits (use `for_capacity`). A carry into the
    next slot cannot be detected; only bits beyond a plaintext's last slot are.
    """

    def __init__(self, slots: int, slot_bits: int, n_bits: int) -> None:
        if slots < 1 or slot_bits < 1 or slot_bits > n_bits - 2:
            raise InvalidSpec(
                f"packing refused: slots={slots}, slot_bits={slot_bits}, n_bits={n_bits}"
                " (need slots >= 1 and 1 <= slot_bits <= n_bits - 2)"
            )
        self.slots = slots
        self.slot_bits = slot_bits
        self.per_ciphertext = (n_bits - 2) // slot_bits
        self.ciphertexts = -(-slots // self.per_ciphertext)

    @classmethod
    def for_capacity(cls, slots: int, max_count: int, n_bits: int) -> OneHotPacking:
        """The tightest packing in which every count up to max_count fits its slot."""
        if max_count < 0:
            raise InvalidSpec(f"max_count must be non-negative, got {max_count}")
        return cls(slots, max(1, max_count.bit_length()), n_bits)

    def encode(self, index: int) -> list[int]:
        if not 0 <= index < self.slots:
            raise InvalidSpec(f"slot {index} out of range [0, {self.slots})")
        out = [0] * self.ciphertexts
        out[index // self.per_ciphertext] = 1 << (self.slot_bits * (index % self.per_ciphertext))
        return out

    def decode(self, plaintexts: Sequence[int]) -> list[int]:
        if len(plaintexts) != self.ciphertexts:
            raise InvalidSpec(f"expected {self.ciphertexts} plaintexts, got {len(plaintexts)}")
        mask = (1 << self.slot_bits) - 1
        counts: list[int] = []
        for j, value in enumerate(plaintexts):
            used = min(self.per_ciphertext, self.slots - j * self.per_ciphertext)
            if not 0 <= value < 1 << (used * self.slot_bits):
                raise ProtocolError(
                    f"packed plaintext {j} has bits beyond its last slot: a count overflowed"
                    f" {self.slot_bits}-bit slots (choose a larger capacity) or it was tampered"
                )
            counts.extend((value >> (self.slot_bits * k)) & mask for k in range(used))
        return counts
