"""`crosstally node agreement ...`: add a signed agreement to a node, list what it holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from services.commands.common import console, fail

app = typer.Typer(help="The agreements this agency signed, as the node holds them.")


Config = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="CROSSTALLY_NODE_CONFIG", help="node TOML config"),
]


@app.command("add")
def add(
    terms_file: Annotated[
        Path,
        typer.Argument(
            help="the agreement as JSON, as the hub holds it (the file recorded with `admin "
            "agreement create`, or GET /v1/agreements/{id})"
        ),
    ],
    config: Config,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="add without asking (for scripts)")
    ] = False,
) -> None:
    """Show an agreement's terms, ask, then write it where the node reads agreements; a
    running node applies it from its next task, without a restart."""
    from services.agency_node.agreements import AgreementConflict, add_agreement, read_agreement
    from services.agency_node.briefing import agreement_lines
    from services.commands.node import load_node_settings

    settings = load_node_settings(config)
    try:
        terms = read_agreement(terms_file)
    except ValueError as exc:
        raise fail(f"{exc}; nothing was added") from exc
    console.print(f"agreement {terms.id}, for {settings.agency}:", markup=False)
    for line in agreement_lines(terms):
        console.print(f"  {line}", markup=False)
    if not yes and not typer.confirm(
        f"Add agreement {terms.id} as {settings.agency} signed it?", default=False
    ):
        raise fail("not confirmed; nothing was added")
    try:
        written = add_agreement(settings, terms)
    except AgreementConflict as exc:
        raise fail(f"{exc}; nothing was added") from exc
    if written is None:
        console.print(f"this node holds agreement {terms.id} already, with these terms")
        return
    console.print(
        f"added {written}; a running node applies it from its next task (no restart)",
        markup=False,
    )


@app.command("list")
def list_agreements(config: Config) -> None:
    """The agreements the node holds: node.toml's [[agreements]] and its agreements directory."""
    from services.agency_node.agreements import AgreementBook
    from services.commands.node import load_node_settings

    settings = load_node_settings(config)
    book = AgreementBook(settings)
    held = book.current()
    if not held:
        console.print(f"{settings.agency} holds no agreement")
    for terms in held:
        where = "node.toml" if terms in book.configured else str(settings.agreements_dir)
        console.print(
            f"{terms.id:<16} {terms.valid_from} .. {terms.valid_until}  {', '.join(terms.kinds)}"
            f"  {', '.join(terms.participants)}  ({where})",
            markup=False,
        )
    for bad in book.unreadable:
        console.print(f"[red]ignored {bad.path}: {bad.problem}[/red]")
    if book.unreadable:
        raise typer.Exit(1)
