"""Per-query Paillier private keys at rest: sealed with the hub's key-encryption key."""

from __future__ import annotations

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from protocol.paillier import PrivateKey, PublicKey
from services.hub.errors import Unavailable


class KeyVault:
    """Seals a private key bound to its query id; only this hub's key can open it."""

    def __init__(self, key_encryption_key: bytes) -> None:
        self._box = SecretBox(key_encryption_key)

    def seal(self, query_id: str, key: PrivateKey) -> bytes:
        return bytes(self._box.encrypt(query_id.encode() + b"\x00" + key.to_bytes()))

    def open(self, query_id: str, public_key: PublicKey, sealed: bytes) -> PrivateKey:
        try:
            plain = self._box.decrypt(sealed)
        except CryptoError as exc:
            raise Unavailable(
                "the query's private key cannot be opened: the hub's key-encryption key "
                "changed since the query started; restore CROSSTALLY_HUB_KEY_ENCRYPTION_KEY"
            ) from exc
        owner, _, raw = plain.partition(b"\x00")
        if owner != query_id.encode():
            raise Unavailable(f"the sealed key stored for query {query_id} belongs to another one")
        return PrivateKey.from_bytes(public_key, raw)
