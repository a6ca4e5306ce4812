"""End-to-end envelopes between parties: PyNaCl Box to the recipient, Ed25519 signature.

The relay (the hub) stores and forwards envelopes it cannot read or alter undetected.
A signed envelope binds sender, recipient, query and step, so a blob replayed into
another query or step fails to open. Every failure raises one opaque error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from nacl.exceptions import BadSignatureError, CryptoError
from nacl.public import Box, PrivateKey, PublicKey
from nacl.signing import SigningKey, VerifyKey

from protocol.errors import MalformedMessage


class EnvelopeError(MalformedMessage):
    """An envelope failed authentication or was addressed elsewhere."""


@dataclass(frozen=True)
class PartyKeys:
    """A party's long-term keys: X25519 for boxes, Ed25519 for signatures."""

    box: PrivateKey
    sign: SigningKey

    @classmethod
    def generate(cls) -> PartyKeys:
        return cls(PrivateKey.generate(), SigningKey.generate())

    @property
    def public(self) -> PublicParty:
        return PublicParty(bytes(self.box.public_key), bytes(self.sign.verify_key))


@dataclass(frozen=True)
class PublicParty:
    """What enrollment registers: the two public keys (32 bytes each)."""

    box_key: bytes
    verify_key: bytes

    def __post_init__(self) -> None:
        if len(self.box_key) != 32 or len(self.verify_key) != 32:
            raise MalformedMessage("party public keys must be 32 bytes each (X25519, Ed25519)")


def _context(sender: str, recipient: str, query_id: str, step: str) -> bytes:
    return json.dumps([sender, recipient, query_id, step], separators=(",", ":")).encode()


def seal(payload: bytes, *, sender: str, keys: PartyKeys, recipient: str, to: PublicParty,
         query_id: str, step: str) -> bytes:  # fmt: skip
    """Sign (context + payload), then encrypt to the recipient."""
    context = _context(sender, recipient, query_id, step)
    signed = keys.sign.sign(len(context).to_bytes(4, "big") + context + payload)
    return bytes(Box(keys.box, PublicKey(to.box_key)).encrypt(bytes(signed)))


def open_sealed(envelope: bytes, *, sender: str, frm: PublicParty, recipient: str, keys: PartyKeys,
                query_id: str, step: str) -> bytes:  # fmt: skip
    """Decrypt, verify the signature and the context; one opaque error for every failure."""
    try:
        signed = Box(keys.box, PublicKey(frm.box_key)).decrypt(envelope)
        body = VerifyKey(frm.verify_key).verify(signed)
    except (CryptoError, BadSignatureError, ValueError, TypeError) as exc:
        raise EnvelopeError(
            "envelope failed authentication: tampered, truncated or misaddressed"
        ) from exc
    size = int.from_bytes(body[:4], "big")
    if body[4 : 4 + size] != _context(sender, recipient, query_id, step):
        raise EnvelopeError("envelope failed authentication: tampered, truncated or misaddressed")
    return bytes(body[4 + size :])
