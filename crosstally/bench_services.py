"""`crosstally bench --services`: the bench's tally through a real hub and nodes on loopback.

The same query spec and the same records as the in-process tally, but every party is a
`crosstally node serve` process reading its CSV extract, and the hub is `crosstally hub
serve` on SQLite, exactly as `crosstally demo` runs them. The time is the hub's own, from
accepting the submission to releasing the table, so it includes the Paillier key
generation, every lease, seal, relay upload and download, and the decryption, as the
in-process `tally_seconds` includes the same protocol work without the services.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.spec import parse_spec
from services.governance import terms_for_spec
from services.hub_api import ENDED, HubAPI
from services.loopback import Deployment

ANALYST = "bench-analyst"
OPERATOR = "bench-operator"
POLL_SECONDS = 0.5

OnProgress = Callable[[str, int, int], None]
"""Called with the query's phase, steps done and steps in all, on every status read."""


class ServicesMismatch(RuntimeError):
    """The services path released something else than the in-process tally on the same data."""


@dataclass(frozen=True)
class ServicesRun:
    """What the run through the services cost, and what it released."""

    seconds: float
    relay_bytes: int  # sealed row sets the parties sent through the relay, plus the tally
    http_bytes: int  # bodies on the wire: each sealed row set up once and down once, the tally
    row_sets: int
    table: dict[str, Any]
    cpu_seconds: float | None  # hub, nodes and their workers while the query ran (Linux only)
    parts: int = 0  # sealed parts the row sets travelled in
    # Peak resident memory (MB) of each node's own process and, under "<agency> workers",
    # of its worker processes together if it has any (Linux only; empty elsewhere).
    node_peak_rss_mb: dict[str, float] = field(default_factory=dict)

    @property
    def population(self) -> int | None:
        """The released total (None only if disclosure control suppressed it)."""
        count = self.table["total"]["count"]
        return None if count is None else int(count)


def run_services(
    document: Mapping[str, Any],
    extracts: Mapping[str, Path],
    directory: Path,
    *,
    workers: int,
    hub_settings: Mapping[str, str] | None = None,
    node_settings: Mapping[str, Any] | None = None,
    started: Callable[[], None] = lambda: None,
    progress: OnProgress = lambda *_: None,
) -> ServicesRun:
    """Start a hub and one node per extract, run `document` through the API, stop everything.

    Each node gets a curve pool of `workers` processes, like the in-process tally's one pool.
    `hub_settings` are CROSSTALLY_HUB_* values (lower case, without the prefix) and
    `node_settings` keys of every node's config (such as `part_bytes`). `started` is
    called once every process is up, just before the submission.
    """
    today = dt.date.today()
    spec = parse_spec(document)
    terms = terms_for_spec(
        spec,
        analysts=[ANALYST],
        valid_from=today,
        valid_until=today + dt.timedelta(days=30),
        title="crosstally bench --services",
    )
    deployment = Deployment.plan(
        directory,
        extracts={node: {"path": path} for node, path in extracts.items()},
        agreements=[terms],
        analyst=ANALYST,
        operator=OPERATOR,
        hub_settings=hub_settings,
        node_settings={"workers": workers, **(node_settings or {})},
    )
    try:
        deployment.start()
        started()
        return _run(deployment, dict(document), progress)
    except Exception as exc:
        for name, tail in deployment.log_tails():
            exc.add_note(f"--- {name} log ---\n{tail}")
        raise
    finally:
        deployment.stop()


def _run(deployment: Deployment, document: dict[str, Any], progress: OnProgress) -> ServicesRun:
    hub = deployment.hub
    services = [hub.service, *(n.service for n in deployment.nodes)]
    pids = [s.process.pid for s in services if s is not None and s.process is not None]
    with HubAPI(hub.url, deployment.operator_token) as api:
        cpu_before = tree_cpu_seconds(pids)
        query = api.submit(document)
        while True:
            detail = api.query(query.id)
            p = detail.progress
            progress(p.phase, p.steps_done, p.steps_total)
            if detail.status in ENDED:
                cpu_after = tree_cpu_seconds(pids)
                peaks = node_peaks(deployment)
                break
            exited = [s.name for s in services if s is not None and not s.running]
            if exited:
                raise RuntimeError(f"{', '.join(exited)} exited while the bench query ran")
            time.sleep(POLL_SECONDS)
    if detail.status != "released":
        raise RuntimeError(f"the bench query ended {detail.status}: {detail.error}")
    assert detail.finished_at is not None
    seconds = (detail.finished_at - detail.submitted_at).total_seconds()
    with HubAPI(hub.url, deployment.analyst_token) as api:
        table = api.result(query.id).table
    with hub.admin() as admin:
        audit = admin.audit(query.id)
    stored = [e["detail"] for e in audit if e["action"] == "relay.stored"]
    # The audit keeps sizes only coarsely; the hub's /metrics counts every byte relayed
    # since it started, and this hub served this one query.
    rows_in, rows_out, tally = _relayed_bytes(hub.url, hub.admin_token)
    return ServicesRun(
        seconds=seconds,
        relay_bytes=rows_in + tally,
        http_bytes=rows_in + rows_out + tally,
        row_sets=len(stored),
        table=table,
        cpu_seconds=None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        parts=sum(int(d.get("parts", 1)) for d in stored),
        node_peak_rss_mb=peaks,
    )


def _relayed_bytes(url: str, token: str) -> tuple[int, int, int]:
    """Row set bytes into and out of the hub, and tally bytes in, from its /metrics
    (which needs a monitor or admin credential)."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    response.raise_for_status()
    text = response.text
    found: dict[tuple[str, str], int] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "crosstally_hub_relay_bytes_total":
                key = (sample.labels["direction"], sample.labels["what"])
                found[key] = int(sample.value)
    return found[("in", "rows")], found[("out", "rows")], found[("in", "tally")]


def node_peaks(deployment: Deployment) -> dict[str, float]:
    """Each node process's peak resident memory, and its workers' together, in MB (from
    /proc's VmHWM; read before the processes stop, so nothing is left out)."""
    peaks: dict[str, float] = {}
    for node in deployment.nodes:
        process = node.service.process if node.service is not None else None
        if process is None:
            continue
        own = _peak_kb(process.pid)
        if own is None:
            continue
        peaks[node.agency] = own / 1024
        children = [_peak_kb(c) for c in _descendants(process.pid)]
        if children:  # one worker runs inline, in the node's own process
            peaks[f"{node.agency} workers"] = sum(c or 0 for c in children) / 1024
    return peaks


def _peak_kb(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                children = [int(c) for c in (task / "children").read_text().split()]
                found += children
                todo += children
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def tree_cpu_seconds(pids: Sequence[int]) -> float | None:
    """CPU time so far of these processes and all their descendants, from /proc (None
    where there is no /proc). Children that ended count through their parent's cutime."""
    if not Path("/proc").is_dir():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in [p for root in pids for p in (root, *_descendants(root))]:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # it ended meanwhile
        total += sum(int(f) for f in fields[11:15]) / ticks  # utime stime cutime cstime
    return total


def check_same_release(services: ServicesRun, released: Mapping[str, Any]) -> None:
    """Fail loudly unless the services released the in-process tally's table, cell for cell."""
    expected = json.loads(json.dumps(released))
    if services.table == expected:
        return
    raise ServicesMismatch(
        "the services path released a different table than the in-process tally on the same "
        f"records: population {services.population} vs {expected['total']['count']}; "
        f"services {json.dumps(services.table['cells'])} vs in-process "
        f"{json.dumps(expected['cells'])}"
    )
