"""The node's long-term key pair file (X25519 + Ed25519) and its public half for enrollment."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from protocol.envelope import PartyKeys


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def write_keys(path: Path, keys: PartyKeys, agency: str) -> None:
    """Write the private keys readable by the owner only (refuses to overwrite)."""
    document = {
        "agency": agency,
        "box_private": _b64(bytes(keys.box)),
        "sign_seed": _b64(bytes(keys.sign)),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(document, handle, indent=2)


def read_keys(path: Path) -> PartyKeys:
    try:
        document = json.loads(path.read_text())
        return PartyKeys(
            PrivateKey(base64.b64decode(document["box_private"])),
            SigningKey(base64.b64decode(document["sign_seed"])),
        )
    except OSError as exc:
        raise ValueError(f"cannot read the node's key file {path}: {exc.strerror}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a crosstally key file; make one with `crosstally node keygen`"
        ) from exc


def fingerprint(box_key: bytes, verify_key: bytes) -> str:
    """A party's public keys as a steward reads them aloud: 32 hex digits in groups of four
    (the first 128 bits of SHA-256 over both keys)."""
    digest = hashlib.sha256(b"crosstally party keys\0" + box_key + verify_key).hexdigest()[:32]
    return " ".join(digest[i : i + 4] for i in range(0, 32, 4))


def same_fingerprint(given: str, box_key: bytes, verify_key: bytes) -> bool:
    """`given` as a steward typed it (any case, spaces or colons or none)."""
    typed = "".join(c for c in given.lower() if c not in " :-")
    return typed == fingerprint(box_key, verify_key).replace(" ", "")


def read_public_document(path: Path) -> tuple[str, bytes, bytes]:
    """A partner's public half (`<agency>.public.json` from `crosstally node init`)."""
    try:
        document = json.loads(path.read_text())
        box_key = base64.b64decode(document["box_key"], validate=True)
        verify_key = base64.b64decode(document["verify_key"], validate=True)
        agency = str(document["agency"])
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"{path} is not a node's public key file (agency, box_key, verify_key, as "
            "`crosstally node init` writes it)"
        ) from exc
    if len(box_key) != 32 or len(verify_key) != 32:
        raise ValueError(f"{path}: box_key and verify_key must be 32 bytes each")
    return agency, box_key, verify_key


def public_document(keys: PartyKeys, agency: str) -> dict[str, str]:
    """What the hub administrator needs to enroll this node (safe to email)."""
    public = keys.public
    return {
        "agency": agency,
        "box_key": _b64(public.box_key),
        "verify_key": _b64(public.verify_key),
        "fingerprint": fingerprint(public.box_key, public.verify_key),
    }
