"""The agreements a node holds: node.toml's [[agreements]] plus one JSON file per agreement
in its agreements directory, re-read whenever a file there changes (no restart needed)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from services.agency_node.config import NodeSettings, settings_problems
from services.governance import terms_problems
from services.wire import AgreementTerms

log = logging.getLogger("crosstally.node")

Signature = tuple[tuple[str, int, int], ...]


class AgreementConflict(Exception):
    """An agreement cannot be added as it stands; the message says why and what to do."""


@dataclass(frozen=True)
class Unreadable:
    """A file in the agreements directory that holds no usable agreement."""

    path: Path
    problem: str


def _signature(directory: Path) -> Signature:
    """Name, modification time and size of every agreement file: any change shows."""
    try:
        entries = sorted(directory.glob("*.json"))
    except OSError:
        return ()
    out = []
    for path in entries:
        try:
            stat = path.stat()
        except OSError:
            continue  # removed while listing: the next look sees it gone
        out.append((path.name, stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def read_agreement(path: Path) -> AgreementTerms:
    """One agreement file: the JSON the hub holds (`GET /v1/agreements/{id}`, or `admin
    agreement draft`); fields the hub adds when it records one are ignored."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k not in ("created_at", "created_by")}
    try:
        return AgreementTerms.model_validate(data)
    except ValidationError as exc:
        problems = settings_problems(
            exc,
            missing="missing; the agreement as the hub holds it has every term",
            extra="is not an agreement term; check its spelling",
        )
        raise ValueError(f"{path} is not a valid agreement: {problems}") from exc


class AgreementBook:
    """Every agreement this agency signed. `current()` looks at the directory each time
    (a stat per file) and re-reads it when something changed, so an agreement added by
    `crosstally node agreement add` applies from the node's next task."""

    def __init__(self, settings: NodeSettings) -> None:
        self.configured = list(settings.agreements)  # node.toml's [[agreements]]
        self.directory = settings.agreements_dir
        self._signature: Signature | None = None
        self._files: list[AgreementTerms] = []
        self.unreadable: list[Unreadable] = []
        self._lock = threading.Lock()  # the pull loop and the admin API both read it

    def current(self) -> list[AgreementTerms]:
        with self._lock:
            signature = _signature(self.directory)
            if signature != self._signature:
                first = self._signature is None
                self._signature = signature
                self._load()
                if not first:
                    ids = ", ".join(a.id for a in self._files) or "none"
                    log.info("agreements in %s re-read: %s", self.directory, ids)
            return self.configured + self._files

    def _load(self) -> None:
        files, unreadable = [], []
        known = {a.id: a for a in self.configured}
        for path in sorted(self.directory.glob("*.json")):
            try:
                terms = read_agreement(path)
            except ValueError as exc:
                unreadable.append(Unreadable(path, str(exc)))
                continue
            clash = known.get(terms.id)
            if clash is not None and clash != terms:
                unreadable.append(
                    Unreadable(path, f"agreement {terms.id} is held already with other terms")
                )
                continue
            if clash is None:
                files.append(terms)
                known[terms.id] = terms
        for bad in unreadable:
            log.error("agreement file %s ignored: %s", bad.path, bad.problem)
        self._files, self.unreadable = files, unreadable


def add_agreement(settings: NodeSettings, terms: AgreementTerms) -> Path | None:
    """Write `terms` to the agreements directory as <id>.json (atomically, mode 0644).

    None when the node holds that agreement already with the same terms. An agreement is
    immutable once signed: other terms under a held id, or terms that cannot be recorded,
    raise AgreementConflict."""
    problems = terms_problems(terms)
    if problems:
        raise AgreementConflict("; ".join(problems))
    book = AgreementBook(settings)
    held = {a.id: a for a in book.current()}
    if terms.id in held:
        if held[terms.id] == terms:
            return None
        raise AgreementConflict(
            f"this node holds agreement {terms.id} already, with other terms; an agreement "
            "is never changed once signed: a change is a new agreement under a new id"
        )
    if settings.agency not in terms.participants:
        raise AgreementConflict(
            f"{settings.agency} is not a participant of agreement {terms.id} "
            f"({', '.join(terms.participants)}); only agreements it signed belong here"
        )
    directory = settings.agreements_dir
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{terms.id}.json"
    text = json.dumps(terms.model_dump(mode="json"), indent=2) + "\n"
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".adding-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)  # the running node never sees half a file
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target
