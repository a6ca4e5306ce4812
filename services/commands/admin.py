"""`crosstally admin ...`: enroll nodes, issue credentials, record agreements, audit."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from services.commands.common import HubUrl, Token, console, fail, hub_api
from services.commands.query import DEFAULT_HUB, load_spec

app = typer.Typer(help="Hub administration (admin or auditor credential).", no_args_is_help=True)
credential_app = typer.Typer(help="People's credentials.", no_args_is_help=True)
agreement_app = typer.Typer(help="Data-sharing agreements.", no_args_is_help=True)
app.add_typer(credential_app, name="credential")
app.add_typer(agreement_app, name="agreement")


@app.command()
def enroll(
    public_keys: Annotated[Path, typer.Argument(help="JSON printed by `crosstally node keygen`")],
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
    credential_out: Annotated[
        Path | None,
        typer.Option(
            help="write the node's credential to this file (mode 0600, only the token), "
            "ready to be the node's credential_file; never overwrites"
        ),
    ] = None,
) -> None:
    """Enroll a node; prints its credential once (hand it to the agency's IT securely)."""
    try:
        document = json.loads(public_keys.read_text())
        agency, box, verify = document["agency"], document["box_key"], document["verify_key"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise fail(f"{public_keys} is not a node's public key document: {exc}") from exc
    if credential_out is not None and credential_out.exists():
        raise fail(f"{credential_out} exists; nothing was enrolled (credentials are never "
                   "overwritten)")  # fmt: skip
    with hub_api(hub, token) as api:
        issued = api.enroll(agency, box, verify)
    if credential_out is not None:
        write_secret(credential_out, issued.token)
        console.print(
            f"enrolled {agency}; its credential is in {credential_out} (mode 0600): hand it "
            "to the agency's IT securely, as the node's credential_file",
            markup=False,
        )
        return
    console.print(f"enrolled {agency}; its credential (shown once, save only the next line):")
    typer.echo(issued.token)


def write_secret(path: Path, token: str) -> None:
    """Create `path` holding only `token` and a newline, readable by its owner alone."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise fail(f"cannot create {path}: {exc.strerror}; the credential is not shown "
                   "again, so revoke it and enroll anew") from exc  # fmt: skip
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    path.chmod(0o600)  # whatever the umask


@app.command()
def nodes(hub: HubUrl = DEFAULT_HUB, token: Token = "") -> None:
    """Enrolled nodes and when each last called in."""
    with hub_api(hub, token) as api:
        for n in api.nodes():
            seen = f"{n.last_seen:%Y-%m-%d %H:%M:%S}" if n.last_seen else "never"
            console.print(f"{n.agency:<10} {'active' if n.active else 'inactive':<9} seen {seen}")


@credential_app.command("issue")
def issue_credential(
    name: str,
    role: Annotated[
        str, typer.Option(help="admin, operator, analyst, auditor, or monitor (reads /metrics)")
    ],
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
) -> None:
    """Issue a credential; the token is printed once and stored only as a hash."""
    from services.wire import NAME_PATTERN

    if not re.fullmatch(NAME_PATTERN, name):
        raise fail(
            f"credential name {name!r} is not allowed: use 1 to 64 letters, digits and "
            "_ . @ -, starting with a letter or digit, no spaces (for example bob.smith "
            "or bob@agency.ct.gov); nothing was issued"
        )
    with hub_api(hub, token) as api:
        issued = api.issue(name, role)
    console.print(f"credential {issued.id} for {issued.name} ({issued.role}):")
    typer.echo(issued.token)


@credential_app.command("list")
def list_credentials(hub: HubUrl = DEFAULT_HUB, token: Token = "") -> None:
    """People's credentials: id, name, role, and whether each is active or revoked
    (never the tokens, which the hub keeps only as hashes). Admin or auditor."""
    with hub_api(hub, token) as api:
        for c in api.credentials():
            state = f"revoked {c.revoked_at:%Y-%m-%d}" if c.revoked_at else "active"
            console.print(f"{c.id:>4} {c.name:<20} {c.role:<9} {state}")


@credential_app.command("revoke")
def revoke_credential(
    credential_id: Annotated[int, typer.Argument(help="the id `admin credential list` shows")],
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
) -> None:
    """Revoke a person's credential at once: every later request with it gets 401. The
    revocation is audited and cannot be undone; issue a new credential instead."""
    with hub_api(hub, token) as api:
        api.revoke(credential_id)
    console.print(f"credential {credential_id} revoked")


def read_terms(path: Path) -> Any:
    from pydantic import ValidationError

    from services.agency_node.config import settings_problems
    from services.wire import AgreementTerms

    try:
        text = path.read_text()
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        return AgreementTerms.model_validate(data)
    except OSError as exc:
        raise fail(f"cannot read agreement terms {path}: {exc.strerror}") from exc
    except ValidationError as exc:
        problems = settings_problems(
            exc,
            missing="missing; add it (`crosstally admin agreement draft` writes every term)",
            extra="is not an agreement term; check its spelling",
        )
        raise fail(f"{path}: not a valid agreement: {problems}") from exc
    except ValueError as exc:
        syntax = "TOML" if path.suffix == ".toml" else "JSON"
        raise fail(f"{path}: not valid {syntax}: {exc}") from exc


@agreement_app.command("create")
def create_agreement(
    terms: Annotated[Path, typer.Argument(help="agreement terms, JSON or TOML")],
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
) -> None:
    """Record a signed agreement at the hub (each node keeps its own copy too)."""
    document = read_terms(terms)
    with hub_api(hub, token) as api:
        out = api.create_agreement(document)
    console.print(f"agreement {out.id} recorded ({', '.join(out.participants)})")


@agreement_app.command("list")
def list_agreements(hub: HubUrl = DEFAULT_HUB, token: Token = "") -> None:
    with hub_api(hub, token) as api:
        for a in api.agreements():
            console.print(
                f"{a.id:<16} {a.valid_from} .. {a.valid_until}  {', '.join(a.kinds)}  "
                f"{', '.join(a.participants)}"
            )


@agreement_app.command("draft")
def draft_agreement(
    spec: Annotated[str, typer.Argument(help="spec JSON file, or a template name")],
    analyst: Annotated[list[str], typer.Option(help="analysts who may read results")],
    valid_from: Annotated[str, typer.Option(help="YYYY-MM-DD")] = str(dt.date.today()),
    valid_until: Annotated[str, typer.Option(help="YYYY-MM-DD")] = str(
        dt.date.today().replace(year=dt.date.today().year + 1)
    ),
) -> None:
    """Print the narrowest agreement terms that permit a spec, as a starting point."""
    from protocol.errors import InvalidSpec
    from protocol.spec import parse_spec
    from services.governance import terms_for_spec

    try:
        parsed = parse_spec(load_spec(spec))
        terms = terms_for_spec(
            parsed,
            analysts=analyst,
            valid_from=dt.date.fromisoformat(valid_from),
            valid_until=dt.date.fromisoformat(valid_until),
        )
    except (InvalidSpec, ValueError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(json.dumps(terms.model_dump(mode="json"), indent=2))


@app.command()
def audit(
    hub: HubUrl = DEFAULT_HUB,
    token: Token = "",
    query: Annotated[str | None, typer.Option(help="only this query's entries")] = None,
    verify: Annotated[bool, typer.Option(help="recompute the hash chain")] = False,
) -> None:
    """Read the hub's audit log, or verify its hash chain (auditor or admin)."""
    with hub_api(hub, token) as api:
        if verify:
            check = api.verify_audit()
            if not check.ok:
                raise fail(f"audit chain broken at entry {check.first_bad}: {check.problem}")
            console.print(f"audit chain ok: {check.entries} entries, head {check.head[:16]}")
            return
        for e in api.audit(query):
            detail = json.dumps(e["detail"], separators=(",", ":"))
            console.print(
                f"{e['seq']:>6} {e['at'][:19]} {e['actor']:<14} {e['action']:<18} {detail}"
            )
