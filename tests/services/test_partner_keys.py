"""Partner keys pinned at first use: a hub that swaps a partner's keys is refused by the node
until its steward confirms the new fingerprint (issue 13, finding 5)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from protocol.envelope import PartyKeys
from services.agency_node.keys import fingerprint, public_document, same_fingerprint
from services.commands.node import app as node_cli
from services.wire import AgreementTerms
from tests.services.conftest import running_hub
from tests.services.harness import (
    HubHarness,
    InProcessNode,
    agreement_for,
    drive,
    make_node,
    template_spec,
)

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubHarness]:
    """The checks are the node's; one hub backend serves them."""
    with running_hub(f"sqlite:///{tmp_path / 'hub.sqlite'}") as harness:
        yield harness


@pytest.fixture
def terms(hub: HubHarness) -> AgreementTerms:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    return terms


def _node(hub: HubHarness, agency: str, world: dict[str, NodeData], tmp_path: Path,
          engine: P256Engine, terms: AgreementTerms, **extra: object) -> InProcessNode:  # fmt: skip
    return make_node(hub, agency, world[agency], tmp_path, engine=engine, agreements=[terms],
                     **extra)  # type: ignore[arg-type]  # fmt: skip


def _config(tmp_path: Path, agency: str) -> Path:
    """A config the steward's CLI can read, on the in-process node's own store."""
    config = tmp_path / f"{agency.lower()}.toml"
    config.write_text(
        f'environment = "development"\nagency = "{agency}"\nhub_url = "http://testserver"\n'
        f'keys_file = "unused.keys"\ndata_dir = "{agency}"\n[extract]\npath = "unused.csv"\n'
    )
    return config


def _swap_keys(hub: HubHarness, agency: str, keys: PartyKeys) -> None:
    """What whoever holds the hub's database can do: other keys under the agency's name."""
    from services.hub.store.models import Node

    with hub.db.transaction() as session:
        node = session.get(Node, agency)
        assert node is not None
        node.box_key, node.verify_key = keys.public.box_key, keys.public.verify_key


def _fp(keys: PartyKeys) -> str:
    return fingerprint(keys.public.box_key, keys.public.verify_key)


def test_the_first_task_pins_each_partners_keys(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path,
    terms: AgreementTerms,
) -> None:  # fmt: skip
    dcf = _node(hub, "DCF", world, tmp_path, engine, terms)
    jj = _node(hub, "JBCSSD", world, tmp_path, engine, terms)
    query = hub.submit(CROSSOVER)
    assert drive(hub, [dcf, jj], query["id"])["status"] == "released"

    assert {a: k.fingerprint for a, k in dcf.store.partner_keys().items()} == {
        "JBCSSD": _fp(jj.keys)
    }
    assert {a: k.fingerprint for a, k in jj.store.partner_keys().items()} == {"DCF": _fp(dcf.keys)}
    assert "first use" in dcf.store.partner_keys()["JBCSSD"].source
    assert dcf.store.key_changes() == []


def test_a_swapped_partner_key_is_refused_until_the_steward_trusts_its_fingerprint(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path,
    terms: AgreementTerms,
) -> None:  # fmt: skip
    dcf = _node(hub, "DCF", world, tmp_path, engine, terms)
    jj = _node(hub, "JBCSSD", world, tmp_path, engine, terms)
    first = hub.submit(CROSSOVER)
    assert drive(hub, [dcf, jj], first["id"])["status"] == "released"
    released = hub.result(first["id"])["table"]

    # JB-CSSD's enrolled keys change at the hub (an impostor's, or a re-keyed node's).
    new_keys = PartyKeys.generate()
    _swap_keys(hub, "JBCSSD", new_keys)
    jj2 = make_node(hub, "JBCSSD", world["JBCSSD"], tmp_path / "rekeyed", engine=engine,
                    agreements=[terms], keys=new_keys, token=jj.token)  # fmt: skip
    second = hub.submit(CROSSOVER)
    status = drive(hub, [dcf, jj2], second["id"])
    assert status["status"] == "failed"
    detail = json.dumps(status)
    assert "other keys for JBCSSD" in detail and _fp(new_keys) in detail
    assert _fp(jj.keys) in detail  # the pinned fingerprint, for the steward to compare
    # DCF sent no row of its cohort under the new keys: only its refusal left the node.
    sent = [e for e in dcf.store.outbound() if e.query_id == second["id"]]
    assert [e.kind for e in sent] == ["refuse"]
    (change,) = dcf.store.key_changes()
    assert change.agency == "JBCSSD" and change.fingerprint == _fp(new_keys)
    assert dcf.store.partner_keys()["JBCSSD"].fingerprint == _fp(jj.keys)  # the pin held

    config = _config(tmp_path, "DCF")
    cli = CliRunner()
    listed = cli.invoke(node_cli, ["keys", "-c", str(config)])
    assert listed.exit_code == 0 and _fp(new_keys) in listed.output
    wrong = cli.invoke(node_cli, ["trust", "JBCSSD", "-c", str(config), "--steward",
                                  "dcf.steward", "--fingerprint", _fp(jj.keys)])  # fmt: skip
    assert wrong.exit_code == 1 and "no keys for JBCSSD with fingerprint" in wrong.output
    bad_name = cli.invoke(node_cli, ["trust", "JBCSSD", "-c", str(config), "--steward",
                                     "Jane (DCF)", "--fingerprint", _fp(new_keys)])  # fmt: skip
    assert bad_name.exit_code == 1 and "nothing was pinned" in bad_name.output
    assert dcf.store.partner_keys()["JBCSSD"].fingerprint == _fp(jj.keys)

    typed = _fp(new_keys).replace(" ", "").upper()  # as read over the phone
    trusted = cli.invoke(node_cli, ["trust", "JBCSSD", "-c", str(config), "--steward",
                                    "dcf.steward", "--fingerprint", typed])  # fmt: skip
    assert trusted.exit_code == 0, trusted.output
    pin = dcf.store.partner_keys()["JBCSSD"]
    assert pin.fingerprint == _fp(new_keys) and "dcf.steward" in pin.source
    assert dcf.store.key_changes() == []

    third = hub.submit(CROSSOVER)
    assert drive(hub, [dcf, jj2], third["id"])["status"] == "released"
    assert hub.result(third["id"])["table"] == released


def test_keys_pinned_from_the_partners_file_refuse_a_swap_before_first_use(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path,
    terms: AgreementTerms,
) -> None:  # fmt: skip
    real = PartyKeys.generate()  # JB-CSSD's own keys; its public file reached DCF by hand
    public = tmp_path / "jbcssd.public.json"
    public.write_text(json.dumps(public_document(real, "JBCSSD")))
    dcf = _node(hub, "DCF", world, tmp_path, engine, terms)
    config = _config(tmp_path, "DCF")
    cli = CliRunner()
    other = cli.invoke(node_cli, ["trust", "DCF", "-c", str(config), "--steward", "dcf.steward",
                                  "--public-file", str(public)])  # fmt: skip
    assert other.exit_code == 1 and "JBCSSD's keys, not DCF's" in other.output
    pinned = cli.invoke(node_cli, ["trust", "JBCSSD", "-c", str(config), "--steward",
                                   "dcf.steward", "--public-file", str(public)])  # fmt: skip
    assert pinned.exit_code == 0, pinned.output

    impostor = _node(hub, "JBCSSD", world, tmp_path, engine, terms)  # enrolled with other keys
    query = hub.submit(CROSSOVER)
    status = drive(hub, [dcf, impostor], query["id"])
    assert status["status"] == "failed"
    assert "pinned on" in json.dumps(status) and _fp(real) in json.dumps(status)


def test_a_node_refuses_a_task_in_which_the_hub_holds_other_keys_for_it(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path,
    terms: AgreementTerms,
) -> None:  # fmt: skip
    enrolled = PartyKeys.generate()
    token = hub.enroll("DCF", enrolled)
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=[terms],
                    token=token)  # its key file holds other keys than the hub's record  # fmt: skip
    jj = _node(hub, "JBCSSD", world, tmp_path, engine, terms)
    query = hub.submit(CROSSOVER)
    status = drive(hub, [dcf, jj], query["id"])
    assert status["status"] == "failed"
    detail = json.dumps(status)
    assert "the hub holds other keys for DCF" in detail and _fp(enrolled) in detail
    assert "crosstally admin enroll" in detail


def test_fingerprints_compare_as_a_steward_types_them() -> None:
    keys = PartyKeys.generate()
    box, verify = keys.public.box_key, keys.public.verify_key
    shown = fingerprint(box, verify)
    assert len(shown) == 39 and shown.count(" ") == 7
    assert same_fingerprint(shown, box, verify)
    assert same_fingerprint(shown.upper().replace(" ", ":"), box, verify)
    assert not same_fingerprint(shown[:-1] + ("0" if shown[-1] != "0" else "1"), box, verify)
    assert not same_fingerprint(fingerprint(verify, box), box, verify)
