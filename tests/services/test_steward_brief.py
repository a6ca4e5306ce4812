"""What a steward sees before deciding, and agreements added at a node while it runs
(issue 18: steward decisions were blind; agreements had to be written by hand as TOML)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from protocol.blinding import P256Engine
from protocol.driver import NodeData
from services.agency_node.agreements import AgreementBook
from services.commands.node import app as node_cli
from tests.services.harness import HubHarness, agreement_for, drive, make_node, template_spec

pytestmark = pytest.mark.sqlite_only  # the node's and the hub's rules, not its SQL

CROSSOVER = template_spec("crossover-youth", disclosure={"min_cell": 1})


def node_toml(tmp_path: Path, agency: str) -> Path:
    """A config the steward's CLI reads, on the in-process node's own data directory."""
    config = tmp_path / f"{agency.lower()}.toml"
    config.write_text(
        f'environment = "development"\nagency = "{agency}"\nhub_url = "http://testserver"\n'
        f'keys_file = "unused.keys"\ndata_dir = "{agency}"\n'
        f'[extract]\npath = "unused.csv"\n'
    )
    return config


def said(result: Result) -> str:
    """A command's output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def test_a_held_task_shows_the_steward_what_it_asks_of_this_agency(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    at_hub = agreement_for(CROSSOVER)
    hub.agree(at_hub)
    # JB-CSSD's own copy asks for larger cells than the query: the task is held, and the
    # steward sees both what the query asks and the agreement as JB-CSSD signed it.
    jj_copy = at_hub.model_copy(update={"min_cell": 20})
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=[at_hub])
    jj = make_node(hub, "JBCSSD", world["JBCSSD"], tmp_path, engine=engine,
                   agreements=[jj_copy], on_unlisted="hold")  # fmt: skip
    query = hub.submit(CROSSOVER)
    assert drive(hub, [dcf, jj], query["id"])["status"] == "held"

    (row,) = jj.store.held()
    brief = row.brief
    assert brief["agreement"] == "DSA-2024-007" and brief["kind"] == "tally"
    cohorts = {c["label"]: c for c in brief["cohorts"]}
    assert cohorts["jj"] == {"label": "jj", "node": "JBCSSD", "where": "juvenile_cases >= 1"}
    assert cohorts["dcf"]["where"] == "substantiated or placed"
    assert brief["columns"] == ["first_contact", "juvenile_cases"]  # JB-CSSD's own only
    assert brief["group_by"] == list(CROSSOVER["group_by"])
    assert brief["partners"] == ["DCF"] and brief["ring"] == ["DCF", "JBCSSD"]
    assert brief["joiner"] in ("DCF", "JBCSSD") and brief["parties"] == ["DCF"]
    assert brief["min_cell"] == 1
    assert "cells below 20 suppressed; counts not rounded" in brief["agreement_terms"]

    listed = CliRunner().invoke(node_cli, ["held", "-c", str(node_toml(tmp_path, "JBCSSD"))])
    assert listed.exit_code == 0, listed.output
    text = said(listed)
    assert "held because: min_cell 1 is below agreement DSA-2024-007's minimum of 20" in text
    assert "your cohort jj: records where juvenile_cases >= 1" in text
    assert "cohort at DCF dcf: records where substantiated or placed" in text
    assert "columns it reads from JBCSSD: first_contact, juvenile_cases" in text
    assert "grouped by: dcf.sex, dcf.ethnicity, entry_order(" in text
    assert "partners: DCF (ring DCF -> JBCSSD)" in text and f"joiner: {brief['joiner']}" in text
    assert "cells below 1 suppressed" in text
    assert "agreement DSA-2024-007 as JBCSSD signed it:" in text
    assert "DCF lets queries read: " in text and "cells below 20 suppressed" in text


def test_an_unsigned_query_says_the_node_holds_no_copy(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    hub.agree(agreement_for(CROSSOVER))
    nodes = [
        make_node(hub, a, world[a], tmp_path, engine=engine, agreements=[], on_unlisted="hold")
        for a in ("DCF", "JBCSSD")
    ]
    query = hub.submit(CROSSOVER)
    assert drive(hub, nodes, query["id"])["status"] == "held"
    (row,) = nodes[0].store.held()
    assert row.brief["agreement_terms"] is None and row.brief["columns"] == [
        "ethnicity", "first_contact", "placed", "sex", "substantiated",
    ]  # fmt: skip
    listed = CliRunner().invoke(node_cli, ["held", "-c", str(node_toml(tmp_path, "DCF"))])
    assert "agreement DSA-2024-007: DCF holds no copy (not signed here)" in said(listed)


def test_an_agreement_added_at_a_running_node_applies_to_its_next_task(
    hub: HubHarness, world: dict[str, NodeData], engine: P256Engine, tmp_path: Path
) -> None:
    terms = agreement_for(CROSSOVER)
    hub.agree(terms)
    dcf = make_node(hub, "DCF", world["DCF"], tmp_path, engine=engine, agreements=[terms])
    jj = make_node(hub, "JBCSSD", world["JBCSSD"], tmp_path, engine=engine, agreements=[])
    first = hub.submit(CROSSOVER)
    refused = drive(hub, [dcf, jj], first["id"])
    assert refused["status"] == "failed" and "JBCSSD has not signed" in str(refused)

    # The JSON the hub holds, as `GET /v1/agreements/{id}` returns it.
    r = hub.client.get("/v1/agreements/DSA-2024-007", headers=hub.operator)
    (tmp_path / "signed.json").write_text(r.text)
    config = node_toml(tmp_path, "JBCSSD")
    added = CliRunner().invoke(
        node_cli, ["agreement", "add", str(tmp_path / "signed.json"), "-c", str(config), "--yes"]
    )
    assert added.exit_code == 0, added.output
    assert "population dcf & jj" in said(added) and "no restart" in said(added)

    second = hub.submit(CROSSOVER)  # the same worker, never rebuilt
    assert drive(hub, [dcf, jj], second["id"])["status"] == "released"
    assert [a.id for a in jj.worker.agreements.current()] == ["DSA-2024-007"]


def test_agreement_add_shows_the_terms_and_asks_first(tmp_path: Path) -> None:
    config = node_toml(tmp_path, "JBCSSD")
    terms = agreement_for(CROSSOVER)
    signed = tmp_path / "DSA-2024-007.json"
    signed.write_text(json.dumps(terms.model_dump(mode="json")))
    runner = CliRunner()
    add = ["agreement", "add", str(signed), "-c", str(config)]

    declined = runner.invoke(node_cli, add, input="n\n")
    assert declined.exit_code == 1 and "nothing was added" in said(declined)
    assert "cohort jj at JBCSSD: records where juvenile_cases >= 1" in said(declined)
    assert "JBCSSD lets queries read: first_contact, juvenile_cases" in said(declined)
    target = tmp_path / "JBCSSD" / "agreements" / "DSA-2024-007.json"
    assert not target.exists()

    accepted = runner.invoke(node_cli, add, input="y\n")
    assert accepted.exit_code == 0, accepted.output
    assert json.loads(target.read_text())["id"] == "DSA-2024-007"
    again = runner.invoke(node_cli, [*add, "--yes"])
    assert again.exit_code == 0 and "holds agreement DSA-2024-007 already" in said(again)

    changed = terms.model_copy(update={"min_cell": 5})
    signed.write_text(json.dumps(changed.model_dump(mode="json")))
    refused = runner.invoke(node_cli, [*add, "--yes"])
    assert refused.exit_code == 1 and "a new agreement under a new id" in said(refused)
    assert json.loads(target.read_text())["min_cell"] == terms.min_cell

    stranger = node_toml(tmp_path, "DSS")
    refused = runner.invoke(node_cli, ["agreement", "add", str(signed), "-c", str(stranger), "-y"])
    assert refused.exit_code == 1 and "DSS is not a participant" in said(refused)

    signed.write_text("{not json")
    refused = runner.invoke(node_cli, [*add, "--yes"])
    assert refused.exit_code == 1 and "is not valid JSON" in said(refused)

    listed = runner.invoke(node_cli, ["agreement", "list", "-c", str(config)])
    assert listed.exit_code == 0 and "DSA-2024-007" in said(listed)


def test_the_book_rereads_a_changed_directory_and_names_a_bad_file(tmp_path: Path) -> None:
    from services.agency_node.config import load_settings

    settings = load_settings(node_toml(tmp_path, "DCF"))
    book = AgreementBook(settings)
    assert book.current() == []
    terms = agreement_for(CROSSOVER)
    settings.agreements_dir.mkdir(parents=True)
    (settings.agreements_dir / "a.json").write_text(json.dumps(terms.model_dump(mode="json")))
    assert book.current() == [terms]
    (settings.agreements_dir / "b.json").write_text('{"id": "X"}')
    assert book.current() == [terms]
    (bad,) = book.unreadable
    assert bad.path.name == "b.json" and "participants: missing" in bad.problem
    (settings.agreements_dir / "a.json").unlink()
    assert book.current() == []
