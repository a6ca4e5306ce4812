"""Hub settings from the environment (prefix CROSSTALLY_HUB_); placeholders refused in prod."""

from __future__ import annotations

import base64
import binascii
import math
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PLACEHOLDERS = frozenset(
    {"", "changeme", "change-me", "change_me", "secret", "password", "admin", "example", "todo"}
)
MIN_TOKEN_CHARS = 32
# What the characters of a secret say about its randomness: their empirical (Shannon)
# entropy times its length. secrets.token_urlsafe(32) scores about 200 bits; 43 identical
# characters score 0 and "abcd" repeated 88.
MIN_SECRET_BITS = 96
MIN_DISTINCT_CHARS = 10


def secret_bits(value: str) -> float:
    """An upper estimate of the randomness in `value`, in bits, from its character counts."""
    if not value:
        return 0.0
    counts, n = Counter(value), len(value)
    return -n * sum(c / n * math.log2(c / n) for c in counts.values())


def is_weak(value: str) -> bool:
    """Too few distinct characters, or too little entropy, to be a randomly drawn secret."""
    return len(set(value)) < MIN_DISTINCT_CHARS or secret_bits(value) < MIN_SECRET_BITS


def is_placeholder(value: str) -> bool:
    """A value nobody should deploy: empty, a known placeholder, or too short to be unguessable."""
    text = value.strip().lower()
    return text in PLACEHOLDERS or text.startswith("changeme") or len(text) < MIN_TOKEN_CHARS


class HubSettings(BaseSettings):
    """Everything the hub reads at startup; see docs/services.md for each variable."""

    model_config = SettingsConfigDict(env_prefix="CROSSTALLY_HUB_", extra="ignore")

    environment: Literal["development", "production"] = "production"
    database_url: str = "sqlite:///crosstally-hub.sqlite"
    admin_token: SecretStr = Field(
        default=SecretStr(""), description="bootstrap admin bearer token (>= 32 random chars)"
    )
    key_encryption_key: SecretStr = Field(
        default=SecretStr(""),
        description="base64 32-byte key that encrypts Paillier private keys at rest",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8700, ge=0, le=65535)
    lease_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    query_timeout_seconds: float = Field(default=6 * 3600.0, gt=0)
    long_poll_seconds: float = Field(default=20.0, ge=0, le=60)
    sweep_seconds: float = Field(default=2.0, gt=0)
    max_json_bytes: int = Field(default=1 << 20, ge=1024)
    max_blob_bytes: int = Field(default=512 << 20, ge=1024)
    tls_cert_file: Path | None = Field(
        default=None, description="PEM certificate (chain); with tls_key_file the hub serves HTTPS"
    )
    tls_key_file: Path | None = Field(default=None, description="PEM private key of tls_cert_file")
    auth_failure_burst: int = Field(
        default=20, ge=1, description="failed authentications one address may make at once"
    )
    auth_failures_per_minute: float = Field(
        default=10.0, gt=0, description="how fast an address earns back failed authentications"
    )
    paillier_bits: int = Field(default=2048, ge=2048)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> HubSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError(
                "set both CROSSTALLY_HUB_TLS_CERT_FILE and CROSSTALLY_HUB_TLS_KEY_FILE (the "
                "certificate and its private key, PEM) to serve HTTPS, or neither"
            )
        if self.environment == "development":
            return self
        if is_placeholder(self.admin_token.get_secret_value()):
            raise ValueError(
                "CROSSTALLY_HUB_ADMIN_TOKEN is missing or a placeholder; set at least 32 random "
                "characters (python -c 'import secrets; print(secrets.token_urlsafe(32))'), or "
                "set CROSSTALLY_HUB_ENVIRONMENT=development for a local trial"
            )
        if not self.key_encryption_key.get_secret_value():
            raise ValueError(
                "CROSSTALLY_HUB_KEY_ENCRYPTION_KEY is missing; set a base64 32-byte key "
                "(python -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())')"
            )
        self.kek()
        if is_weak(self.admin_token.get_secret_value()):
            raise ValueError(
                "CROSSTALLY_HUB_ADMIN_TOKEN does not look random (too few distinct characters "
                "or repeated ones); set one drawn at random "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
            )
        return self

    def kek(self) -> bytes:
        """The 32-byte key-encryption key; in development a fixed key stands in if none is set."""
        text = self.key_encryption_key.get_secret_value()
        if not text and self.environment == "development":
            return b"crosstally-development-only-key!"
        try:
            key = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("CROSSTALLY_HUB_KEY_ENCRYPTION_KEY is not valid base64") from exc
        if len(key) != 32:
            raise ValueError("CROSSTALLY_HUB_KEY_ENCRYPTION_KEY must decode to 32 bytes")
        return key
