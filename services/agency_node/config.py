"""Node settings: a TOML file plus environment overrides (prefix CROSSTALLY_NODE_)."""

from __future__ import annotations

import re
import ssl
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from services.hub.config import is_placeholder
from services.wire import AGENCY_PATTERN, DEFAULT_PART_BYTES, AgreementTerms

LOOPBACK = ("127.0.0.1", "::1", "localhost")
TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # what the hub issues (secrets.token_urlsafe)


class ConfigError(Exception):
    """The node's configuration cannot be used; the message says which setting to fix."""


class ExtractSource(BaseModel):
    """Where the agency's records come from: a CSV/Parquet file, or a SQL query."""

    model_config = ConfigDict(extra="forbid")

    path: Path | None = None
    url: str | None = Field(default=None, description="SQLAlchemy URL of the agency database")
    query: str | None = None
    column_map: Path | None = Field(default=None, description="TOML column map file")
    columns: dict[str, str] = Field(default_factory=dict, description="inline column map")
    attributes: list[str] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> ExtractSource:
        if (self.path is None) == (self.url is None):
            raise ValueError("set exactly one of extract.path (CSV/Parquet) or extract.url")
        if self.url is not None and not self.query:
            raise ValueError("extract.url needs extract.query (the SQL that selects the records)")
        if self.column_map is not None and self.columns:
            raise ValueError("use extract.column_map (a file) or extract.columns, not both")
        return self


class NodeSettings(BaseSettings):
    """Everything a node reads at startup; see docs/services.md and deploy/config/node.toml."""

    model_config = SettingsConfigDict(
        env_prefix="CROSSTALLY_NODE_", env_nested_delimiter="__", extra="forbid"
    )

    environment: Literal["development", "production"] = "production"
    agency: str = Field(pattern=AGENCY_PATTERN)
    hub_url: str = Field(pattern=r"^https?://")
    hub_ca_bundle: Path | None = Field(
        default=None,
        description="PEM file of the CA(s) that signed the hub's certificate, for a hub whose "
        "certificate a private CA issued; unset, the public CAs (certifi) are trusted",
    )
    credential: SecretStr = SecretStr("")
    credential_file: Path | None = None
    keys_file: Path
    data_dir: Path
    admin_host: str = "127.0.0.1"
    admin_port: int = Field(default=8710, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    part_bytes: int = Field(
        default=DEFAULT_PART_BYTES,
        ge=1024,
        description="a row set goes to the relay in sealed parts of at most this many bytes; "
        "keep it below the hub's CROSSTALLY_HUB_MAX_BLOB_BYTES",
    )
    poll_seconds: float = Field(default=20.0, ge=0.0, le=60.0)
    heartbeat_seconds: float = Field(default=10.0, gt=0.0)
    max_backoff_seconds: float = Field(default=30.0, gt=0.0)
    log_format: Literal["text", "json"] = Field(
        default="text", description="json: one JSON object a line, with query_id and step"
    )
    on_unlisted: Literal["refuse", "hold"] = Field(
        default="refuse", description="a task outside every signed agreement: refuse or hold"
    )
    extract: ExtractSource
    agreements: list[AgreementTerms] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives as init values; the environment overrides it (12-factor).
        return env_settings, init_settings, file_secret_settings

    @model_validator(mode="after")
    def _checks(self) -> NodeSettings:
        if self.admin_host not in LOOPBACK:
            raise ValueError(
                f"admin_host {self.admin_host!r}: the node's admin API listens on loopback only "
                "(127.0.0.1); nodes need no inbound port"
            )
        if self.environment != "development" and is_placeholder(self.token()):
            raise ValueError(
                "the node credential is missing or a placeholder: set credential_file (or "
                "CROSSTALLY_NODE_CREDENTIAL) to the token printed at enrollment"
            )
        problem = hub_transport_problem(self.hub_url, self.hub_ca_bundle, self.environment)
        if problem is not None:
            raise ValueError(problem)
        return self

    def hub_verify(self) -> ssl.SSLContext | bool:
        """How to check the hub's certificate: against hub_ca_bundle if set, else the
        public CAs (httpx's default). Every client a node opens to the hub uses this."""
        if self.hub_ca_bundle is None:
            return True
        return ssl.create_default_context(cafile=str(self.hub_ca_bundle))

    def token(self) -> str:
        """The node's bearer credential, from the file if one is named."""
        if self.credential_file is None:
            return self.credential.get_secret_value()
        try:
            text = self.credential_file.read_text().strip()
        except OSError as exc:
            raise ValueError(
                f"credential_file {self.credential_file}: {exc.strerror}; save the token "
                "`crosstally admin enroll` printed there (mode 0600)"
            ) from exc
        if text and not TOKEN.fullmatch(text):
            lines = len(text.splitlines())
            what = f"it holds {lines} lines" if lines > 1 else "it holds more than a token"
            raise ValueError(
                f"credential file {self.credential_file} is malformed: {what}. It must hold "
                "only the node's token, the last line `crosstally admin enroll` printed "
                "(no header line, no spaces)"
            )
        return text

    @property
    def store_path(self) -> Path:
        return self.data_dir / "node.sqlite"

    @property
    def agreements_dir(self) -> Path:
        """Signed agreements as JSON files (`crosstally node agreement add`), beside the
        [[agreements]] of node.toml; the running node re-reads them when they change."""
        return self.data_dir / "agreements"

    @property
    def spool_dir(self) -> Path:
        """Row sets in flight: blinded points and ciphertexts only, deleted once used."""
        return self.data_dir / "spool"


_PATH_KEYS = ("credential_file", "keys_file", "data_dir", "hub_ca_bundle")
_EXTRACT_PATH_KEYS = ("path", "column_map")


def _resolve(base: Path, data: dict[str, Any]) -> dict[str, Any]:
    """Relative paths in the file are relative to the file, not to the working directory."""
    out = dict(data)
    for key in _PATH_KEYS:
        if isinstance(out.get(key), str):
            out[key] = str(base / out[key])
    extract = dict(out.get("extract") or {})
    for key in _EXTRACT_PATH_KEYS:
        if isinstance(extract.get(key), str):
            extract[key] = str(base / extract[key])
    if extract:
        out["extract"] = extract
    return out


def hub_transport_problem(url: str, ca_bundle: Path | None, environment: str) -> str | None:
    """Why the node may not talk to the hub at `url` this way, if it may not.

    In production the node's bearer credential travels only over HTTPS, or over plain
    HTTP to this machine's loopback (an SSH tunnel, a local TLS proxy): never in clear
    over a network.
    """
    parsed = urlsplit(url)
    if parsed.scheme == "http":
        if ca_bundle is not None:
            return (
                f"hub_ca_bundle is set but hub_url {url} is plain http://; use the hub's "
                "https:// URL (the CA bundle checks the hub's certificate)"
            )
        if environment == "production" and (parsed.hostname or "") not in LOOPBACK:
            return (
                f"hub_url {url} is plain http://: in production the node sends its "
                "credential only over HTTPS; use the hub's https:// URL (the hub serves "
                "HTTPS with CROSSTALLY_HUB_TLS_CERT_FILE and CROSSTALLY_HUB_TLS_KEY_FILE; "
                "set hub_ca_bundle if a private CA signed its certificate), or "
                'environment = "development" for a trial on a private network'
            )
    if ca_bundle is not None:
        try:
            ssl.create_default_context(cafile=str(ca_bundle))
        except FileNotFoundError:
            return f"hub_ca_bundle {ca_bundle}: no such file; name the PEM file of the hub's CA"
        except (OSError, ssl.SSLError) as exc:
            return (
                f"hub_ca_bundle {ca_bundle} is not a readable PEM CA certificate "
                f"({exc.__class__.__name__}); it must hold the CA certificate(s) "
                "(-----BEGIN CERTIFICATE-----) that signed the hub's certificate"
            )
    return None


_PATTERN_HINTS = {
    "agency": "an agency code is 1 to 32 upper-case letters, digits or _, starting with a "
    "letter (for example DCF or JBCSSD)",
    "hub_url": "the hub's base URL, starting with http:// or https:// (for example "
    "https://hub.example.ct.gov)",
}


NODE_MISSING = "missing; add it to the config file (or set its CROSSTALLY_NODE_ variable)"
NODE_EXTRA = (
    "is not a setting here; check its spelling (deploy/config/node.example.toml "
    "describes every key)"
)


def settings_problems(
    exc: ValidationError, *, missing: str = NODE_MISSING, extra: str = NODE_EXTRA
) -> str:
    """A settings or document ValidationError as one plain line: each setting, what is
    wrong with it and what to do; never pydantic's types, input values or links."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        where, name = loc.lstrip("."), str(error["loc"][-1]) if error["loc"] else ""
        kind, message = error["type"], str(error["msg"]).removeprefix("Value error, ")
        if kind == "missing":
            message = missing
        elif kind == "extra_forbidden":
            message = extra
        elif kind == "string_pattern_mismatch":
            message = f"not allowed: {_PATTERN_HINTS.get(name, message.lower())}"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems)


def load_settings(path: Path | None, **overrides: Any) -> NodeSettings:
    """Settings from a TOML file (if given), the environment, then `overrides`."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = _resolve(path.resolve().parent, tomllib.loads(path.read_text()))
        except OSError as exc:
            raise ConfigError(f"cannot read node config {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"node config {path} is not valid TOML: {exc}") from exc
    data.update(overrides)
    try:
        return NodeSettings(**data)
    except ValidationError as exc:
        where = path or "(environment)"
        raise ConfigError(f"node config {where}: {settings_problems(exc)}") from exc
