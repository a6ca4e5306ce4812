"""The frictions of a first deployment (issue 18): the example config documents every key,
`node init --admin-port`, `admin enroll --credential-out`, readable refusals of a credential
name and of a hub URL with /v1, Swagger UI without a CDN, one line for a missing hub
database, a random-looking ADMIN_TOKEN, and reconnect attempts in the node's log."""

from __future__ import annotations

import json
import logging
import re
import secrets
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from crosstally.cli import app
from protocol.envelope import PartyKeys
from services.agency_node.config import ExtractSource, NodeSettings, load_settings
from services.agency_node.hub_client import HubClient, HubUnavailable
from services.agency_node.keys import public_document
from services.hub.config import HubSettings
from services.loopback import LoopbackHub, free_port
from services.wire import ClaimRequest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "config" / "node.example.toml"


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, " ".join(result.output.split())


def test_the_example_node_config_documents_every_key_and_the_real_defaults() -> None:
    text = EXAMPLE.read_text()
    documented = set(re.findall(r"^#? ?([a-z_]+) = ", text, flags=re.MULTILINE))
    documented |= set(re.findall(r"^\[\[?([a-z_]+)\]\]?$", text, flags=re.MULTILINE))
    assert set(NodeSettings.model_fields) - documented == set()
    assert set(ExtractSource.model_fields) - documented == set()
    example = tomllib.loads(text)
    assert example["on_unlisted"] == NodeSettings.model_fields["on_unlisted"].default
    commented = dict(re.findall(r'^# ([a-z_]+) = ("[^"]*"|[0-9.]+)', text, flags=re.MULTILINE))
    for key in ("environment", "admin_host", "max_backoff_seconds", "log_format"):
        assert tomllib.loads(f"v = {commented[key]}")["v"] == NodeSettings.model_fields[key].default


def test_node_init_takes_an_admin_port_and_writes_the_default_on_unlisted(tmp_path: Path) -> None:
    code, out = run(
        "node", "init", "--agency", "DCF", "--dir", str(tmp_path / "dcf"), "--hub-url",
        "https://hub.example.ct.gov", "--extract", "dcf.csv", "--admin-port", "8711",
    )  # fmt: skip
    assert code == 0, out
    assert "--credential-out credential" in out
    config = tomllib.loads((tmp_path / "dcf" / "node.toml").read_text())
    assert config["admin_port"] == 8711
    assert config["on_unlisted"] == NodeSettings.model_fields["on_unlisted"].default
    settings = load_settings(tmp_path / "dcf" / "node.toml", environment="development")
    assert settings.admin_port == 8711


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoopbackHub]:
    running = LoopbackHub(tmp_path_factory.mktemp("hub"))
    running.start()
    try:
        yield running
    finally:
        assert running.service is not None
        running.service.stop()


def test_admin_enroll_writes_the_credential_file_the_node_reads(
    hub: LoopbackHub, tmp_path: Path
) -> None:
    public = tmp_path / "dcf.public.json"
    public.write_text(json.dumps(public_document(PartyKeys.generate(), "DCF")))
    credential = tmp_path / "credential"
    env = {"CROSSTALLY_HUB_URL": hub.url, "CROSSTALLY_TOKEN": hub.admin_token}
    code, out = run("admin", "enroll", str(public), "--credential-out", str(credential), env=env)
    assert code == 0, out
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    token = credential.read_text().strip()
    assert token not in out and re.fullmatch(r"[A-Za-z0-9_-]{40,}", token)
    settings = load_settings(
        None, agency="DCF", hub_url=hub.url, credential_file=credential, keys_file="k",
        data_dir=tmp_path, extract={"path": "x.csv"},
    )  # fmt: skip
    assert settings.token() == token
    client = HubClient(hub.url, agency="DCF", token=token, retry_seconds=1)
    try:  # the hub takes it: the node can poll
        assert client.claim(ClaimRequest()).task is None
    finally:
        client.close()

    again, out = run("admin", "enroll", str(public), "--credential-out", str(credential), env=env)
    assert again == 1 and "exists" in out and "nothing was enrolled" in out
    assert credential.read_text().strip() == token

    # What issue 18 saved: the header line above the token. The node says it is malformed.
    credential.write_text(f"enrolled DCF; its credential (shown once):\n{token}\n")
    with pytest.raises(ValueError, match="is malformed: it holds 2 lines"):
        settings.token()


def test_a_credential_name_with_a_space_is_refused_in_plain_words(hub: LoopbackHub) -> None:
    env = {"CROSSTALLY_HUB_URL": hub.url, "CROSSTALLY_TOKEN": hub.admin_token}
    code, out = run("admin", "credential", "issue", "Bob Smith", "--role", "analyst", env=env)
    assert code == 1
    assert "'Bob Smith' is not allowed" in out and "bob.smith" in out and "^[" not in out


def test_a_hub_url_with_v1_is_called_wrong(hub: LoopbackHub) -> None:
    env = {"CROSSTALLY_TOKEN": hub.admin_token}
    code, out = run("admin", "nodes", "--hub", f"{hub.url}/v1", env=env)
    assert code == 1 and "looks wrong" in out and "without /v1" in out
    code, out = run("admin", "nodes", "--hub", f"{hub.url}/crosstally", env=env)
    assert code == 1 and "Not Found" in out and "looks wrong" in out


def test_swagger_ui_is_served_from_the_package_not_a_cdn(hub: LoopbackHub) -> None:
    page = httpx.get(f"{hub.url}/docs", timeout=10)
    assert page.status_code == 200
    sources = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text)
    assert sources and all(s.startswith("/") for s in sources), sources
    assert "cdn" not in page.text and "https://" not in page.text
    for source in sources:
        asset = httpx.get(f"{hub.url}{source}", timeout=10)
        assert asset.status_code == 200 and len(asset.content) > 500, source
    assert httpx.get(f"{hub.url}/openapi.json", timeout=10).json()["info"]["title"]


def test_the_credential_commands_have_help() -> None:
    for command, says in (("list", "active or revoked"), ("revoke", "Revoke a person's")):
        code, out = run("admin", "credential", command, "--help")
        assert code == 0 and says in out, out


@pytest.mark.parametrize("command", ["serve", "migrate"])
def test_a_missing_hub_database_is_one_line_saying_what_to_do(command: str, tmp_path: Path) -> None:
    env = {
        "CROSSTALLY_HUB_ENVIRONMENT": "development",
        "CROSSTALLY_HUB_DATABASE_URL": f"sqlite:///{tmp_path}/missing/dir/hub.sqlite",
        "CROSSTALLY_HUB_PORT": str(free_port()),
    }
    result = CliRunner().invoke(app, ["hub", command], env=env)
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = " ".join(result.output.split())
    assert "cannot open the hub database" in out and "CROSSTALLY_HUB_DATABASE_URL" in out
    assert "Traceback" not in result.output


def test_an_admin_token_that_does_not_look_random_is_refused() -> None:
    kek = "q" * 43 + "="
    for weak in ("a" * 43, "abcd" * 11, "admin-token-" + "y" * 40):
        with pytest.raises(ValueError, match="does not look random"):
            HubSettings(environment="production", admin_token=weak, key_encryption_key=kek)
    assert HubSettings(
        environment="production", admin_token=secrets.token_urlsafe(32), key_encryption_key=kek
    )


def test_each_reconnect_attempt_is_logged_while_the_hub_is_away(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = HubClient(
        f"http://127.0.0.1:{free_port()}", agency="DCF", token="t" * 43, retry_seconds=1.5,
        max_backoff=0.3,
    )  # fmt: skip
    try:
        with (
            caplog.at_level(logging.WARNING, logger="crosstally.node"),
            pytest.raises(HubUnavailable),
        ):
            client.claim(ClaimRequest())
    finally:
        client.close()
    attempts = [r.getMessage() for r in caplog.records if "reconnect attempt" in r.getMessage()]
    assert len(attempts) >= 3
    assert all("hub unreachable (ConnectError" in a for a in attempts)
    assert client.metrics.errors.labels("hub_unreachable")._value.get() == 1
