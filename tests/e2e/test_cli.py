"""End to end through the command line: `crosstally demo`, and an operator's whole day with
`node init`, `admin enroll`, `admin agreement`, `node serve`, `query submit --wait`,
`query result`, `node log --verify` and `admin audit --verify`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from crosstally.synth import generate, write_world
from crosstally.templates import TEMPLATES
from services.loopback import LoopbackHub, Service, command, free_port, stop_all

AS_OF = "2026-06-30"


def crosstally(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    done = subprocess.run(
        command(["crosstally", *args]),
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    assert done.returncode == 0, f"crosstally {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_the_demo_runs_hub_and_nodes_and_exits_cleanly() -> None:
    out = crosstally("demo", "--people", "400", "--seed", "3")
    for name in TEMPLATES:
        assert name in out
    assert "nodes DCF, JBCSSD, CSDE, DSS, DOL, DOC, HIGHERED (no inbound ports)" in out
    assert "the hub learned only the count" in out
    assert "audit chain verified" in out and "every process has exited" in out


def test_an_operators_day_on_the_command_line(tmp_path: Path) -> None:
    extracts = write_world(generate(people=400, seed=4), tmp_path / "extracts")
    hub = LoopbackHub(tmp_path / "hub")
    hub.start()
    nodes: list[Service] = []
    try:
        admin = {"CROSSTALLY_HUB_URL": hub.url, "CROSSTALLY_TOKEN": hub.admin_token}
        draft = crosstally(
            "admin",
            "agreement",
            "draft",
            "crossover-youth",
            "--analyst",
            "ana",
            "--valid-from",
            "2024-01-01",
            "--valid-until",
            "2030-12-31",
        )
        agreement = json.loads(draft)
        (tmp_path / "agreement.json").write_text(draft)
        crosstally("admin", "agreement", "create", str(tmp_path / "agreement.json"), env=admin)
        for agency in ("DCF", "JBCSSD"):
            directory = tmp_path / agency
            crosstally(
                "node",
                "init",
                "--agency",
                agency,
                "--dir",
                str(directory),
                "--hub-url",
                hub.url,
                "--extract",
                str(extracts[agency.lower()]),
            )
            public = directory / f"{agency.lower()}.public.json"
            token = crosstally("admin", "enroll", str(public), env=admin).strip().splitlines()[-1]
            (directory / "credential").write_text(token)
            config = directory / "node.toml"
            port = free_port()
            _add_agreement(config, json.dumps(agreement), port)
            check = crosstally("node", "check", "--config", str(config))
            assert "records kept" in check and "agreements signed: DSA-2024-007" in check
            service = Service(
                agency,
                command(["crosstally", "node", "serve", "--config", str(config)]),
                dict(os.environ),
                f"http://127.0.0.1:{port}/healthz",
                directory / "node.log",
            )
            service.start()
            nodes.append(service)
        operator = (
            crosstally("admin", "credential", "issue", "olga", "--role", "operator", env=admin)
            .strip()
            .splitlines()[-1]
        )
        analyst = (
            crosstally("admin", "credential", "issue", "ana", "--role", "analyst", env=admin)
            .strip()
            .splitlines()[-1]
        )
        as_operator = {"CROSSTALLY_HUB_URL": hub.url, "CROSSTALLY_TOKEN": operator}
        submitted = crosstally(
            "query", "submit", "crossover-youth", "--as-of", AS_OF, "--wait", env=as_operator
        )
        query_id = submitted.split()[1]
        assert "released" in submitted
        table = json.loads(
            crosstally(
                "query",
                "result",
                query_id,
                "--json",
                env={"CROSSTALLY_HUB_URL": hub.url, "CROSSTALLY_TOKEN": analyst},
            )
        )
        assert table["name"] == "crossover-youth" and table["table"]["dimensions"]
        for agency in ("DCF", "JBCSSD"):
            log = crosstally(
                "node", "log", "--verify", "--config", str(tmp_path / agency / "node.toml")
            )
            assert "outbound log ok" in log
        assert "audit chain ok" in crosstally("admin", "audit", "--verify", env=admin)
    finally:
        stop_all(nodes)
        stop_all([hub.service])


def _add_agreement(config: Path, terms_json: str, port: int) -> None:
    """Append the agreement and the admin port to the node.toml `node init` wrote."""
    from services.loopback import node_toml
    from services.wire import AgreementTerms

    terms = AgreementTerms.model_validate_json(terms_json)
    text = config.read_text().replace("[extract]", f"admin_port = {port}\n\n[extract]", 1)
    agreements = node_toml({"extract": {}}, [terms]).split("[extract]\n", 1)[1]
    config.write_text(text.rstrip() + "\n" + agreements)
