"""Deployment files: every compose file validates with `docker-compose config`, marks its
required variables, publishes only the hub's port, and runs the commands the tests run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.loopback import HUB_COMMAND, NODE_COMMAND

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ["docker-compose.yml", "deploy/hub-compose.yml", "deploy/node-compose.yml"]
REQUIRED = {
    "POSTGRES_PASSWORD": "postgres-password",
    "CROSSTALLY_HUB_ADMIN_TOKEN": "a" * 43,
    "CROSSTALLY_HUB_KEY_ENCRYPTION_KEY": "q" * 43 + "=",
    "CROSSTALLY_NODE_DIR": "/srv/crosstally/dcf",
    "CROSSTALLY_HUB_TLS_DIR": "/srv/crosstally/tls",
}
NODE_CONFIG = "/etc/crosstally/node.toml"


def docker_compose() -> str:
    path = shutil.which("docker-compose")
    if path is None:
        message = "docker-compose is not installed (Debian: apt-get install docker-compose)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def config(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRED}
    return subprocess.run(
        [docker_compose(), "-f", str(ROOT / name), "config"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_validate_and_name_what_they_require(name: str) -> None:
    done = config(name, REQUIRED)
    assert done.returncode == 0, done.stderr
    rendered: dict[str, Any] = yaml.safe_load(done.stdout)
    services = rendered["services"]
    for service_name, service in services.items():
        assert "healthcheck" in service, f"{service_name} has no health check"
        if service_name.startswith("node"):
            assert "ports" not in service, f"{service_name} publishes a port"
            assert service["command"] == [*NODE_COMMAND, NODE_CONFIG]
        if service_name == "hub":
            assert service["command"] == list(HUB_COMMAND)
    text = (ROOT / name).read_text()
    for variable in set(re.findall(r"\$\{(\w+):\?", text)):
        missing = config(name, {k: v for k, v in REQUIRED.items() if k != variable})
        assert missing.returncode != 0
        assert variable in missing.stderr or "set" in missing.stderr


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """A service's volumes as target -> source (docker-compose renders short or long form)."""
    out = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target = volume.split(":")[:2]
        else:
            source, target = volume.get("source", ""), volume["target"]
        out[target] = source
    return out


@pytest.mark.parametrize("name", ["docker-compose.yml", "deploy/hub-compose.yml"])
def test_no_compose_file_sends_credentials_over_plain_http(name: str) -> None:
    """The hub serves HTTPS and nodes name it by https:// and verify it (issue 13, finding 6)."""
    services = yaml.safe_load(config(name, REQUIRED).stdout)["services"]
    hub = services["hub"]["environment"]
    assert hub["CROSSTALLY_HUB_TLS_CERT_FILE"] and hub["CROSSTALLY_HUB_TLS_KEY_FILE"]
    assert "/etc/crosstally/tls" in _mounts(services["hub"])
    for service_name, service in services.items():
        if service_name.startswith("node"):
            env = service["environment"]
            assert env["CROSSTALLY_NODE_HUB_URL"].startswith("https://")
            ca = env["CROSSTALLY_NODE_HUB_CA_BUNDLE"]
            assert _mounts(service)[ca] == "/srv/crosstally/tls/ca.pem"  # never the hub's key
    for path in (ROOT / name, ROOT / "deploy/node-compose.yml"):
        lines = path.read_text().splitlines()
        assert not [line for line in lines if "http://" in line.split("#")[0]], path


def test_the_root_compose_file_runs_hub_postgres_and_three_nodes() -> None:
    rendered = yaml.safe_load(config("docker-compose.yml", REQUIRED).stdout)
    services = rendered["services"]
    assert sorted(services) == ["hub", "node-dcf", "node-dss", "node-jbcssd", "postgres"]
    assert [p["published"] for p in services["hub"]["ports"]] == [8700]
    for name in ("node-dcf", "node-dss", "node-jbcssd"):
        assert services[name]["depends_on"]["hub"]["condition"] == "service_healthy"
    assert services["hub"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def _dockerfile_command(name: str) -> list[str]:
    text = (ROOT / "deploy" / name).read_text()
    (match,) = re.findall(r"^CMD (\[.*\])$", text, flags=re.MULTILINE)
    command: list[str] = yaml.safe_load(match)
    return command


def test_the_images_run_the_commands_the_tests_run() -> None:
    assert _dockerfile_command("hub.Dockerfile") == list(HUB_COMMAND)
    assert _dockerfile_command("node.Dockerfile") == [*NODE_COMMAND, NODE_CONFIG]
    # The integration tests and `crosstally demo` start exactly these (services.loopback).
    assert HUB_COMMAND == ("crosstally", "hub", "serve")
    assert NODE_COMMAND == ("crosstally", "node", "serve", "--config")
