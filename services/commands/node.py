"""`crosstally node ...`: run an agency node, check its extract, keys, steward decisions, logs."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from services.commands.common import LogFormatOption, console, fail, setup_logging
from services.commands.node_agreements import app as agreement_app

if TYPE_CHECKING:
    from services.agency_node.config import NodeSettings
    from services.agency_node.store import HeldQuery, NodeStore

app = typer.Typer(help="Run and look after an agency node.", no_args_is_help=True)
app.add_typer(agreement_app, name="agreement", no_args_is_help=True)
SERVE_COMMAND = ("crosstally", "node", "serve")
Config = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="CROSSTALLY_NODE_CONFIG", help="node TOML config"),
]


def load_node_settings(config: Path) -> NodeSettings:
    """The node's settings, or the command ends saying which setting to fix."""
    from services.agency_node.config import ConfigError, load_settings

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise fail(str(exc)) from exc


def _store(config: Path) -> NodeStore:
    from services.agency_node.store import NodeStore

    return NodeStore(load_node_settings(config).store_path)


@app.command()
def serve(config: Config, log_level: str = "info", log_format: LogFormatOption = None) -> None:
    """Pull tasks from the hub (no inbound port) and serve the local admin API on loopback."""
    import uvicorn

    from crosstally.extract import ExtractError
    from services.agency_node.admin import create_admin_app
    from services.agency_node.config import ConfigError
    from services.agency_node.runtime import build

    settings = load_node_settings(config)
    setup_logging(log_level, log_format or settings.log_format)
    try:
        runtime = build(settings)
    except (ConfigError, ExtractError) as exc:
        raise fail(str(exc)) from exc
    uvicorn.run(
        create_admin_app(runtime),
        host=settings.admin_host,
        port=settings.admin_port,
        log_level=log_level,
        log_config=None,  # setup_logging's handler, in the chosen format
        timeout_graceful_shutdown=5,
    )


@app.command()
def check(
    config: Config,
    problems: Annotated[int, typer.Option(help="row problems to list")] = 20,
    hub: Annotated[
        bool,
        typer.Option(
            "--hub", help="also check that the hub answers and accepts the node's credential"
        ),
    ] = False,
    strict: Annotated[
        bool, typer.Option(help="exit 1 when any row of the extract was excluded")
    ] = False,
) -> None:
    """Validate the extract, column map, keys and agreements; print a data-quality profile.

    Exits 1 when the keys or an agreement file cannot be read, with --hub when the hub or
    the credential fails, and with --strict when rows were excluded."""
    from crosstally.extract import ExtractError, quality_profile
    from services.agency_node.agreements import AgreementBook
    from services.agency_node.keys import read_keys
    from services.agency_node.runtime import load_extract

    settings = load_node_settings(config)
    try:
        extract = load_extract(settings)
    except ExtractError as exc:
        raise fail(str(exc)) from exc
    profile = quality_profile(extract)
    table = Table(title=f"{settings.agency} extract: {extract.source}", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("rows read", f"{extract.rows_read:,}")
    table.add_row("records kept", f"{profile.records:,}")
    table.add_row("rows excluded", f"{profile.excluded_rows:,}")
    for name, share in profile.missing.items():
        table.add_row(f"missing {name}", f"{share:.1%}")
    table.add_row("invalid DOB", f"{profile.invalid_dob:,}")
    table.add_row("invalid SSN", f"{profile.invalid_ssn:,}")
    table.add_row("person ids on several records", f"{profile.duplicate_person_ids:,}")
    console.print(table)
    console.print(f"columns: {', '.join(extract.columns)}")
    for problem in extract.problems[:problems]:
        console.print(f"  [yellow]{problem}[/yellow]")
    if len(extract.problems) > problems:
        console.print(f"  ... and {len(extract.problems) - problems:,} more problems")
    failed = []
    try:
        read_keys(settings.keys_file)
        console.print(f"keys: {settings.keys_file} ok")
    except ValueError as exc:
        console.print(f"[red]keys: {escape(str(exc))}[/red]")
        failed.append("the keys")
    book = AgreementBook(settings)
    signed = ", ".join(a.id for a in book.current()) or "none"
    console.print(f"agreements signed: {signed}; tasks outside them: {settings.on_unlisted}")
    for bad in book.unreadable:
        console.print(f"[red]agreement file ignored: {escape(bad.problem)}[/red]")
        failed.append(f"agreement file {bad.path.name}")
    if hub:
        failed += _check_hub(settings)
    if strict and profile.excluded_rows:
        failed.append(f"{profile.excluded_rows:,} rows excluded (--strict)")
    if failed:
        raise fail(f"check failed: {', '.join(failed)}")


def _check_hub(settings: NodeSettings) -> list[str]:
    """Print the hub checks; the names of those that failed."""
    from services.agency_node.doctor import check_hub
    from services.commands.common import hub_url_problem

    problem = hub_url_problem(settings.hub_url)
    if problem is not None:
        console.print(f"[red]hub: {escape(problem)}[/red]")
        return ["hub_url"]
    failed = []
    for result in check_hub(settings):
        if result.ok:
            console.print(f"{result.name}: {result.detail}", markup=False)
        else:
            console.print(f"[red]{result.name}: {escape(result.detail)}[/red]")
            failed.append(result.name)
    return failed


@app.command()
def keygen(
    agency: Annotated[str, typer.Option(help="agency code, e.g. DCF")],
    out: Annotated[Path, typer.Option(help="private key file to create (mode 0600)")],
) -> None:
    """Make the node's long-term keys; prints the public half for the hub administrator."""
    from protocol.envelope import PartyKeys
    from services.agency_node.keys import public_document, write_keys

    keys = PartyKeys.generate()
    try:
        write_keys(out, keys, agency)
    except FileExistsError as exc:
        raise fail(f"{out} exists; keys are never overwritten") from exc
    typer.echo(json.dumps(public_document(keys, agency), indent=2))


@app.command()
def init(
    agency: Annotated[str, typer.Option(help="agency code, e.g. DCF")],
    directory: Annotated[Path, typer.Option("--dir", help="directory to create")],
    hub_url: Annotated[str, typer.Option(help="the hub's URL as the node sees it")],
    extract: Annotated[str, typer.Option(help="extract path, relative to --dir")],
    data_dir: Annotated[str, typer.Option(help="the node's store directory")] = "data",
    admin_port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="loopback port of the node's admin API (8710 if not given); give each node "
            "on one host its own",
        ),
    ] = None,
) -> None:
    """Start a node's configuration directory: keys, node.toml and the public half to enroll."""
    from protocol.envelope import PartyKeys
    from services.agency_node.keys import public_document, write_keys
    from services.loopback import node_toml

    if (directory / "node.toml").exists():
        raise fail(f"{directory / 'node.toml'} exists; nothing was changed")
    keys = PartyKeys.generate()
    write_keys(directory / "node.keys.json", keys, agency)
    public = directory / f"{agency.lower()}.public.json"
    public.write_text(json.dumps(public_document(keys, agency), indent=2) + "\n")
    settings = {
        "agency": agency,
        "hub_url": hub_url,
        "credential_file": "credential",
        "keys_file": "node.keys.json",
        "data_dir": data_dir,
        **({} if admin_port is None else {"admin_port": admin_port}),
        "on_unlisted": "refuse",  # the default; "hold" keeps such tasks for the steward
        "extract": {"path": extract},
    }
    (directory / "node.toml").write_text(node_toml(settings, []))
    console.print(
        f"wrote {directory}/node.toml and node.keys.json. Next:\n"
        f"  1. the hub administrator runs: crosstally admin enroll {public} "
        "--credential-out credential\n"
        f"  2. put that file at {directory}/credential (mode 0600; only the token, no header)\n"
        f"  3. add the agreements {agency} signed to node.toml ([[agreements]]), or each as "
        f"the hub's JSON: crosstally node agreement add FILE --config {directory}/node.toml\n"
        f"  4. crosstally node check --config {directory}/node.toml --hub\n"
        f"This node's key fingerprint is {public_document(keys, agency)['fingerprint']}: read "
        "it to your partners' stewards, who can check what their nodes pin "
        "(`crosstally node keys`)",
        markup=False,  # the text is literal: [[agreements]] is TOML, not markup
    )


@app.command()
def held(
    config: Config,
    show_all: Annotated[
        bool, typer.Option("--all", help="also list held queries that have ended at the hub")
    ] = False,
) -> None:
    """Queries held for the data steward's decision (those still open at the hub), with what
    each asks of this agency: cohorts and filters, columns, grouping, partners, joiner, and
    the agreement's terms."""
    from services.agency_node.briefing import brief_lines

    agency = load_node_settings(config).agency
    rows = _store(config).held()
    shown = [h for h in rows if show_all or h.ended_at is None]
    if not shown:
        console.print("no held queries")
    for h in shown:
        state = h.decision
        if h.ended_at is not None:
            state = f"ended at the hub {h.ended_at} ({h.decision}): no longer pending"
        console.print(f"{h.query_id}  {h.agreement}  {state}  held {h.held_at}", markup=False)
        console.print(f"  held because: {h.reason}", markup=False)
        for line in brief_lines(h.brief, agency=agency):
            console.print(f"  {line}", markup=False)
        if h.decision == "pending" and h.decision_reason:
            console.print(f"  note: {h.decision_reason}", markup=False)
    ended = len(rows) - len(shown)
    if ended:
        noun = "query" if ended == 1 else "queries"
        console.print(
            f"{ended} held {noun} ended at the hub and need no decision (--all lists them)"
        )


def _decide(config: Path, query_id: str, *, approve: bool, steward: str, reason: str) -> None:
    from services.agency_node.review import reason_problem, steward_problem

    problem = steward_problem(steward) or reason_problem(reason)
    if problem is not None:
        raise fail(f"{problem}; nothing was recorded")
    store = _store(config)
    if not store.decide(query_id, approve=approve, steward=steward, reason=reason):
        raise fail(_not_pending(store.held_query(query_id), query_id))
    verb = "approved" if approve else "rejected"
    console.print(f"{verb}; the running node tells the hub on its next poll")


def _not_pending(held: HeldQuery | None, query_id: str) -> str:
    if held is None:
        return f"this node holds no query {query_id}; see `crosstally node held`"
    if held.ended_at is not None:
        return (
            f"query {query_id} is no longer pending: it ended at the hub ({held.ended_at}; "
            "failed, cancelled or released), so it needs no decision; nothing was recorded. "
            "`crosstally query status` says why it ended"
        )
    return (
        f"query {query_id} was already {held.decision} by {held.steward}; a decision is "
        "final once recorded"
    )


@app.command()
def approve(
    query_id: str,
    config: Config,
    steward: Annotated[
        str,
        typer.Option(
            help="your name for the audit logs: letters, digits and _ . @ - (e.g. jane.steward)"
        ),
    ],
) -> None:
    """Let a held query run on this node (the steward's decision is logged at the hub)."""
    _decide(config, query_id, approve=True, steward=steward, reason="")


@app.command()
def reject(
    query_id: str,
    config: Config,
    steward: Annotated[
        str,
        typer.Option(
            help="your name for the audit logs: letters, digits and _ . @ - (e.g. jane.steward)"
        ),
    ],
    reason: Annotated[str, typer.Option(help="why, for the operator")] = "",
) -> None:
    """Refuse a held query; it fails at the hub with your reason."""
    _decide(config, query_id, approve=False, steward=steward, reason=reason)


@app.command()
def keys(config: Config) -> None:
    """Partners' keys this node pinned, and changed keys the hub sent that wait for you."""
    store = _store(config)
    pinned = sorted(store.partner_keys().values(), key=lambda k: k.agency)
    if not pinned:
        console.print("no partner keys pinned yet: each is pinned at its first task")
    for key in pinned:
        console.print(f"{key.agency}: {key.fingerprint} (pinned {key.at[:19]}, {key.source})",
                      markup=False)  # fmt: skip
    for change in store.key_changes():
        console.print(
            f"[yellow]{change.agency}: the hub sent other keys, {change.fingerprint} "
            f"(first seen {change.at[:19]}, query {change.source}); tasks are refused "
            "until you confirm them with the partner and run `crosstally node trust`[/yellow]"
        )


@app.command()
def trust(
    agency: Annotated[str, typer.Argument(help="the partner agency, e.g. JBCSSD")],
    config: Config,
    steward: Annotated[
        str,
        typer.Option(
            help="your name for the node's records: letters, digits and _ . @ - (jane.steward)"
        ),
    ],
    fingerprint: Annotated[
        str | None,
        typer.Option(
            help="the new fingerprint as the partner read it to you; it must match keys "
            "the hub sent (see `crosstally node keys`)"
        ),
    ] = None,
    public_file: Annotated[
        Path | None,
        typer.Option(
            help="pin from the partner's public key file (<agency>.public.json from "
            "`crosstally node init`), received from the partner, not through the hub"
        ),
    ] = None,
) -> None:
    """Pin a partner's keys on your word: a change the hub offered, or the partner's file."""
    from services.agency_node.keys import read_public_document, same_fingerprint
    from services.agency_node.review import steward_problem

    problem = steward_problem(steward)
    if problem is not None:
        raise fail(f"{problem}; nothing was pinned")
    if (fingerprint is None) == (public_file is None):
        raise fail("give exactly one of --fingerprint or --public-file; nothing was pinned")
    store = _store(config)
    if public_file is not None:
        try:
            named, box, verify = read_public_document(public_file)
        except ValueError as exc:
            raise fail(f"{exc}; nothing was pinned") from exc
        if named != agency:
            raise fail(f"{public_file} holds {named}'s keys, not {agency}'s; nothing was pinned")
        source = f"steward {steward}, from {public_file.name}"
    else:
        assert fingerprint is not None
        offered = [
            c
            for c in store.key_changes()
            if c.agency == agency and same_fingerprint(fingerprint, c.box_key, c.verify_key)
        ]
        if not offered:
            raise fail(
                f"the hub sent no keys for {agency} with fingerprint {fingerprint}; "
                "`crosstally node keys` lists those it sent. Nothing was pinned"
            )
        box, verify = offered[0].box_key, offered[0].verify_key
        source = f"steward {steward}, change seen in query {offered[0].source}"
    store.pin_key(agency, box, verify, source=source)
    pinned = store.partner_keys()[agency]
    console.print(f"pinned {agency}: {pinned.fingerprint}; tasks with these keys run again",
                  markup=False)  # fmt: skip


@app.command()
def matches(
    query_id: str,
    config: Config,
    out: Annotated[Path | None, typer.Option(help="write the record ids to this CSV")] = None,
) -> None:
    """Record ids a match query found (kept on this node only)."""
    ids = _store(config).members(query_id)
    if out is None:
        console.print(f"{len(ids):,} matched records; pass --out to write them")
        return
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["record_id"])
        writer.writerows([i] for i in ids)
    console.print(f"{len(ids):,} record ids written to {out}")


@app.command()
def log(
    config: Config,
    verify: Annotated[bool, typer.Option(help="check the hash chain")] = False,
) -> None:
    """Everything that left this node: query, step, recipient, bytes and rows."""
    store = _store(config)
    if verify:
        check = store.verify_outbound()
        if not check.ok:
            raise fail(f"outbound log broken at entry {check.first_bad}: {check.problem}")
        console.print(f"outbound log ok: {check.entries} entries, head {check.head[:16]}")
        return
    for e in store.outbound():
        console.print(
            f"{e.seq:>5} {e.at} {e.query_id} {e.kind:<7} {e.step:<16} -> {e.recipient:<9} "
            f"{e.bytes:>12,} B {e.rows:>8,} rows {e.outcome}"
        )


@app.command()
def health(config: Config) -> None:
    """Exit 0 when the node can work: its admin API answers and it reaches the hub
    (degraded still exits 0); exit 1 when it is failing or not running."""
    import httpx

    settings = load_node_settings(config)
    url = f"http://{settings.admin_host}:{settings.admin_port}/healthz"
    try:
        response = httpx.get(url, timeout=5)
        body = response.json()
        verdict = str(body["status"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        raise fail(f"node at {url} is not answering: {exc}") from exc
    contact = body.get("last_contact") or "never"
    line = f"{settings.agency}: {verdict}, worker {body.get('worker')}, last contact {contact}"
    if body.get("last_error"):
        line += f"; last error: {body['last_error']}"
    if verdict == "failing" or response.status_code >= 400:
        raise fail(f"{line}; the node cannot work")
    console.print(line, markup=False)
