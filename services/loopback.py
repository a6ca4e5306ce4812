"""A hub and agency nodes as real processes on 127.0.0.1, run as the containers run them.

`crosstally demo`, `crosstally bench --services` and the integration tests start them with
`HUB_COMMAND` and `NODE_COMMAND`; tests/services/test_deploy.py checks the images run the same.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from protocol.envelope import PartyKeys
from services.agency_node.keys import public_document, write_keys
from services.hub_api import HubAPI
from services.wire import AgreementTerms

HUB_COMMAND = ("crosstally", "hub", "serve")
NODE_COMMAND = ("crosstally", "node", "serve", "--config")
# A node reads and checks its whole extract before it serves: a million records take minutes.
# A node that fails exits, and the wait for it ends at once.
NODE_START_SECONDS = 900.0


def command(args: Sequence[str]) -> list[str]:
    """`crosstally ...` from this interpreter's environment (its console script if installed)."""
    script = Path(sys.executable).parent / args[0]
    if script.exists():
        return [str(script), *args[1:]]
    return [sys.executable, "-m", "crosstally.cli", *args[1:]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not become healthy within {timeout:.0f} s")


@dataclass
class Service:
    """One subprocess with its log file; stop politely, or kill it outright."""

    name: str
    args: list[str]
    env: dict[str, str]
    health_url: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def launch(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_healthy(self, timeout: float = 90.0) -> None:
        assert self.process is not None, "launch() first"
        wait_until_healthy(self.health_url, self.process, timeout)

    def start(self) -> None:
        self.launch()
        self.wait_healthy()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def terminate(self) -> None:
        """Ask the process to shut down (SIGTERM) without waiting for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._close()

    def kill(self) -> None:
        """SIGKILL: no cleanup at all, like a power cut."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._close()

    def _close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None


def _toml_key(key: str) -> str:
    """A bare key when TOML allows one; quoted otherwise (`"dcf.ethnicity"` is not dotted)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str | Path):
        return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def node_toml(settings: Mapping[str, Any], agreements: Sequence[AgreementTerms]) -> str:
    """A node config file: top-level keys, [extract], then one [[agreements]] per agreement."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in settings.items() if k != "extract"]
    lines += ["", "[extract]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in settings["extract"].items()]
    for terms in agreements:
        lines += ["", "[[agreements]]"]
        data = terms.model_dump(exclude_none=True)
        lines += [f"{k} = {_toml_value(v)}" for k, v in data.items()]
    return "\n".join(lines) + "\n"


@dataclass
class LoopbackHub:
    """The hub as `crosstally hub serve`, configured through CROSSTALLY_HUB_* like a container."""

    directory: Path
    database_url: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    kek: str = field(default_factory=lambda: base64.b64encode(os.urandom(32)).decode())
    service: Service | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSTALLY_")}
        env.update(
            CROSSTALLY_HUB_ENVIRONMENT="production",
            CROSSTALLY_HUB_DATABASE_URL=self.database_url
            or f"sqlite:///{self.directory / 'hub.sqlite'}",
            CROSSTALLY_HUB_ADMIN_TOKEN=self.admin_token,
            CROSSTALLY_HUB_KEY_ENCRYPTION_KEY=self.kek,
            CROSSTALLY_HUB_HOST="127.0.0.1",
            CROSSTALLY_HUB_PORT=str(self.port),
            **{f"CROSSTALLY_HUB_{k.upper()}": v for k, v in self.settings.items()},
        )
        return env

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.service = Service(
            "hub",
            command(HUB_COMMAND),
            self.env(),
            f"{self.url}/healthz",
            self.directory / "hub.log",
        )
        self.service.start()

    def admin(self) -> HubAPI:
        return HubAPI(self.url, self.admin_token)


@dataclass
class LoopbackNode:
    """An agency node as `crosstally node serve --config node.toml`."""

    agency: str
    directory: Path
    hub_url: str
    extract: dict[str, Any]
    agreements: list[AgreementTerms]
    settings: dict[str, Any] = field(default_factory=dict)
    keys: PartyKeys = field(default_factory=PartyKeys.generate)
    admin_port: int = field(default_factory=free_port)
    service: Service | None = None

    def __post_init__(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_keys(self.keys_file, self.keys, self.agency)

    @property
    def keys_file(self) -> Path:
        return self.directory / "node.keys.json"

    @property
    def config_file(self) -> Path:
        return self.directory / "node.toml"

    def public_keys(self) -> dict[str, str]:
        return public_document(self.keys, self.agency)

    def configure(self, credential: str) -> None:
        credential_file = self.directory / "credential"
        credential_file.write_text(credential)
        credential_file.chmod(0o600)
        settings = {
            "agency": self.agency,
            "hub_url": self.hub_url,
            "credential_file": credential_file,
            "keys_file": self.keys_file,
            "data_dir": self.directory / "data",
            "admin_port": self.admin_port,
            **self.settings,
            "extract": self.extract,
        }
        self.config_file.write_text(node_toml(settings, self.agreements))

    def launch(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSTALLY_")}
        self.service = Service(
            f"node {self.agency}",
            command([*NODE_COMMAND, str(self.config_file)]),
            env,
            f"http://127.0.0.1:{self.admin_port}/healthz",
            self.directory / "node.log",
        )
        self.service.launch()

    def start(self) -> None:
        self.launch()
        assert self.service is not None
        self.service.wait_healthy(NODE_START_SECONDS)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(
            f"http://127.0.0.1:{self.admin_port}/healthz", timeout=5
        ).json()
        return body


def start_all(nodes: Sequence[LoopbackNode]) -> None:
    """Launch every node at once (their imports overlap), then wait for each to be healthy."""
    for node in nodes:
        node.launch()
    for node in nodes:
        assert node.service is not None
        node.service.wait_healthy(NODE_START_SECONDS)


def stop_all(services: Sequence[Service | None]) -> None:
    """Shut several processes down at once."""
    for service in services:
        if service is not None:
            service.terminate()
    for service in services:
        if service is not None:
            service.stop()


def enroll_all(hub: LoopbackHub, nodes: Sequence[LoopbackNode]) -> None:
    """The administrator's part: enroll every node and hand each its credential."""
    with hub.admin() as api:
        for node in nodes:
            keys = node.public_keys()
            issued = api.enroll(node.agency, keys["box_key"], keys["verify_key"])
            node.configure(issued.token)


@dataclass
class Deployment:
    """A hub and its nodes on loopback with agreements recorded and people's credentials issued.

    `start()` does what an administrator does (enroll every node, record the agreements,
    issue an operator's and an analyst's credential) and starts the nodes; `stop()` ends
    every process. The demo and `crosstally bench --services` both run through this.
    """

    hub: LoopbackHub
    nodes: list[LoopbackNode]
    agreements: list[AgreementTerms]
    analyst_name: str
    operator_name: str
    operator_token: str = ""
    analyst_token: str = ""

    @classmethod
    def plan(
        cls,
        directory: Path,
        *,
        extracts: Mapping[str, Mapping[str, Any]],
        agreements: Sequence[AgreementTerms],
        analyst: str,
        operator: str,
        hub_settings: Mapping[str, str] | None = None,
        node_settings: Mapping[str, Any] | None = None,
    ) -> Deployment:
        """Directories, keys and configs for a hub and one node per agency in `extracts`
        (agency -> its `[extract]` settings); each node lists the agreements it signed."""
        hub = LoopbackHub(directory / "hub", settings=dict(hub_settings or {}))
        nodes = [
            LoopbackNode(
                agency,
                directory / "nodes" / agency,
                hub.url,
                dict(extract),
                [t for t in agreements if agency in t.participants],
                settings=dict(node_settings or {}),
            )
            for agency, extract in extracts.items()
        ]
        return cls(hub, nodes, list(agreements), analyst, operator)

    def start(self) -> None:
        self.hub.start()
        enroll_all(self.hub, self.nodes)
        with self.hub.admin() as admin:
            for terms in self.agreements:
                admin.create_agreement(terms)
            self.operator_token = admin.issue(self.operator_name, "operator").token
            self.analyst_token = admin.issue(self.analyst_name, "analyst").token
        start_all(self.nodes)

    def stop(self) -> None:
        stop_all([n.service for n in self.nodes])
        stop_all([self.hub.service])

    def node(self, agency: str) -> LoopbackNode:
        return next(n for n in self.nodes if n.agency == agency)

    def log_tails(self, lines: int = 15) -> list[tuple[str, str]]:
        """(which process, the last lines of its log) for every log written so far."""
        logs = [("hub", self.hub.directory / "hub.log")]
        logs += [(n.agency, n.directory / "node.log") for n in self.nodes]
        return [
            (name, "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
            for name, path in logs
            if path.exists()
        ]
