"""The hub serves HTTPS itself; nodes verify it against a private CA and refuse plain HTTP in
production (issue 13, finding 6). A real `crosstally hub serve --tls-cert --tls-key` on
loopback, with a CA this test makes."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocol.envelope import PartyKeys
from services.agency_node.config import ConfigError, NodeSettings, load_settings
from services.agency_node.hub_client import HubClient, HubUnavailable
from services.loopback import HUB_COMMAND, LoopbackHub, Service, command
from services.wire import ClaimRequest

NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pki:
    ca: Path  # the private CA's certificate: what nodes trust
    cert: Path  # the hub's certificate, for 127.0.0.1 and localhost, signed by the CA
    key: Path
    rogue_ca: Path  # another CA, which did not sign the hub's certificate


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common))
        .issuer_name(_name(common))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key, ca_cert = _ca("crosstally test CA")
    _, rogue_cert = _ca("somebody else's CA")
    hub_key = ec.generate_private_key(ec.SECP256R1())
    hub_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("crosstally hub"))
        .issuer_name(ca_cert.subject)
        .public_key(hub_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(minutes=5))
        .not_valid_after(NOW + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = Pki(
        ca=directory / "ca.pem",
        cert=directory / "hub.pem",
        key=directory / "hub-key.pem",
        rogue_ca=directory / "rogue-ca.pem",
    )
    pki.ca.write_bytes(_pem(ca_cert))
    pki.rogue_ca.write_bytes(_pem(rogue_cert))
    pki.cert.write_bytes(_pem(hub_cert))
    pki.key.write_bytes(
        hub_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pki.key.chmod(0o600)
    return pki


@dataclass
class TlsHub:
    url: str
    admin_token: str
    env: dict[str, str]


@pytest.fixture(scope="module")
def tls_hub(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsHub]:
    """`crosstally hub serve --tls-cert --tls-key` on 127.0.0.1, as an operator starts it."""
    directory = tmp_path_factory.mktemp("tls-hub")
    hub = LoopbackHub(directory)
    url = f"https://127.0.0.1:{hub.port}"
    args = [*command(HUB_COMMAND), "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)]
    service = Service("hub", args, hub.env(), f"{url}/healthz", directory / "hub.log")
    service.launch()
    trusted = ssl.create_default_context(cafile=str(pki.ca))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert service.process is not None and service.process.poll() is None, (
                service.log_path.read_text()
            )
            try:
                if httpx.get(f"{url}/healthz", verify=trusted, timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.2)
        yield TlsHub(url, hub.admin_token, hub.env())
    finally:
        service.stop()


def _enroll(hub: TlsHub, pki: Pki, agency: str) -> str:
    keys = PartyKeys.generate().public
    body = {
        "agency": agency,
        "box_key": base64.b64encode(keys.box_key).decode(),
        "verify_key": base64.b64encode(keys.verify_key).decode(),
    }
    response = httpx.post(
        f"{hub.url}/v1/admin/nodes",
        json=body,
        headers={"Authorization": f"Bearer {hub.admin_token}"},
        verify=ssl.create_default_context(cafile=str(pki.ca)),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


def _settings(tmp_path: Path, **values: Any) -> NodeSettings:
    base: dict[str, Any] = {
        "agency": "DCF",
        "credential": "c" * 20 + "-Q9xZ7" + "k" * 20,
        "keys_file": tmp_path / "node.keys",
        "data_dir": tmp_path,
        "extract": {"path": tmp_path / "extract.csv"},
    }
    return load_settings(None, **{**base, **values})


def test_a_node_talks_to_the_hub_over_https_verifying_the_private_ca(
    tls_hub: TlsHub, pki: Pki, tmp_path: Path
) -> None:
    token = _enroll(tls_hub, pki, "DCF")
    settings = _settings(tmp_path, hub_url=tls_hub.url, hub_ca_bundle=str(pki.ca), credential=token)
    assert settings.environment == "production"
    client = HubClient(
        settings.hub_url, agency="DCF", token=settings.token(), verify=settings.hub_verify()
    )
    try:
        assert client.claim(ClaimRequest()).task is None  # authenticated, over TLS
    finally:
        client.close()


@pytest.mark.parametrize("trust", ["public CAs", "another CA"])
def test_a_client_that_does_not_trust_the_ca_cannot_connect(
    tls_hub: TlsHub, pki: Pki, tmp_path: Path, trust: str
) -> None:
    token = _enroll(tls_hub, pki, "JBCSSD" if trust == "public CAs" else "DSS")
    bundle = {} if trust == "public CAs" else {"hub_ca_bundle": str(pki.rogue_ca)}
    settings = _settings(tmp_path, hub_url=tls_hub.url, credential=token, **bundle)
    client = HubClient(
        settings.hub_url,
        agency="DSS",
        token=settings.token(),
        verify=settings.hub_verify(),
        retry_seconds=0.5,
    )
    try:
        with pytest.raises(HubUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            client.claim(ClaimRequest())
    finally:
        client.close()
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(f"{tls_hub.url}/healthz")


def test_the_hub_speaks_no_plain_http_on_its_tls_port(tls_hub: TlsHub) -> None:
    plain = tls_hub.url.replace("https://", "http://")
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{plain}/healthz", timeout=5)


def test_hub_health_checks_its_own_https_port(tls_hub: TlsHub, pki: Pki) -> None:
    env = {**tls_hub.env, "CROSSTALLY_HUB_TLS_CERT_FILE": str(pki.cert)}
    done = subprocess.run(
        [*command(("crosstally", "hub", "health"))], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    # Named by its URL and CA, as a monitoring host elsewhere would check it.
    named = ["--url", tls_hub.url.replace("127.0.0.1", "localhost"), "--ca-bundle", str(pki.ca)]
    done = subprocess.run(
        [*command(("crosstally", "hub", "health")), *named],
        env=tls_hub.env,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def _line(text: str) -> str:
    """Error output as one line (the terminal wraps long messages)."""
    return " ".join(text.split())


def test_hub_serve_says_plainly_when_the_key_does_not_fit(pki: Pki, tmp_path: Path) -> None:
    hub = LoopbackHub(tmp_path)
    args = ["--tls-cert", str(pki.cert), "--tls-key", str(pki.ca)]  # a certificate, no key
    done = subprocess.run(
        [*command(HUB_COMMAND), *args], env=hub.env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert f"cannot use TLS certificate {pki.cert}" in _line(done.stderr)
    assert "Traceback" not in done.stderr
    only_cert = {**hub.env(), "CROSSTALLY_HUB_TLS_CERT_FILE": str(pki.cert)}
    done = subprocess.run(
        command(HUB_COMMAND), env=only_cert, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "set both CROSSTALLY_HUB_TLS_CERT_FILE and CROSSTALLY_HUB_TLS_KEY_FILE" in _line(
        done.stderr
    )


# Production node settings: the credential never crosses a network in clear.


@pytest.mark.parametrize(
    "url", ["http://hub.crosstally.example.ct.gov", "http://hub:8700", "http://10.0.0.5:8700"]
)
def test_production_node_settings_refuse_a_plain_http_hub(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError, match="is plain http://: in production") as info:
        _settings(tmp_path, hub_url=url)
    assert "use the hub's https:// URL" in str(info.value)
    assert "hub_ca_bundle" in str(info.value)
    # A trial says so; loopback (an SSH tunnel, a local TLS proxy) never leaves the machine.
    assert _settings(tmp_path, hub_url=url, environment="development").hub_url == url
    for local in ("http://127.0.0.1:8700", "http://localhost:8700", "http://[::1]:8700"):
        assert _settings(tmp_path, hub_url=local).hub_url == local


def test_the_ca_bundle_is_checked_when_the_settings_load(tmp_path: Path, pki: Pki) -> None:
    url = "https://hub.crosstally.example.ct.gov"
    with pytest.raises(ConfigError, match=r"hub_ca_bundle .*missing.pem: no such file"):
        _settings(tmp_path, hub_url=url, hub_ca_bundle=str(tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match="is not a readable PEM CA certificate"):
        _settings(tmp_path, hub_url=url, hub_ca_bundle=str(junk))
    with pytest.raises(ConfigError, match=r"hub_ca_bundle is set but hub_url .* is plain http"):
        _settings(tmp_path, hub_url="http://127.0.0.1:8700", hub_ca_bundle=str(pki.ca))
    # In node.toml the bundle is relative to the file, like every other path.
    config = tmp_path / "node.toml"
    config.write_text(
        f'agency = "DCF"\nhub_url = "{url}"\nhub_ca_bundle = "ca.pem"\n'
        f'credential = "{"c" * 20}-Q9xZ7{"k" * 20}"\nkeys_file = "node.keys"\n'
        'data_dir = "."\n[extract]\npath = "extract.csv"\n'
    )
    (tmp_path / "ca.pem").write_bytes(pki.ca.read_bytes())
    settings = load_settings(config)
    assert settings.hub_ca_bundle == tmp_path / "ca.pem"
    assert isinstance(settings.hub_verify(), ssl.SSLContext)
