"""Each party of a tally in its own OS process, with the parent as the relay (bench only).

A real deployment runs nodes on separate machines; to measure what one party costs
(peak resident memory, its own worker pool) the benchmark does the same on one
machine: every node is a process that reads its own extract file, keeps its secret,
and exchanges only wire messages through the parent, which plays hub and relay.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from crosstally.extract import read_extract
from protocol.blinding import make_engine
from protocol.messages import EncryptedTally, FileRange, RowSet
from protocol.tally import HubTally, Joiner, TallyNode, TallyResult, TallyTask
from protocol.timing import wall_seconds


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def _spooled(rows: RowSet) -> tuple[str, int]:
    assert isinstance(rows.points, FileRange)
    path = rows.points.path
    return str(path), path.stat().st_size


def _party(
    name: str, extract: str, task: TallyTask, workers: int, spool: str, conn: Connection
) -> None:
    """A node process: answers start/forward/receive/finish/stats commands from the relay.

    Row sets travel as files in `spool` (the relay passes their paths), as a node's
    HTTP client would stream a large body from disk; a node never holds one whole.
    """
    with make_engine(task.spec.linkage.curve, workers=workers) as engine:
        data = read_extract(Path(extract))
        node = TallyNode(name, data.records, data.columns, engine=engine, spool=Path(spool))
        del data
        joiner = Joiner(task) if task.joiner == name else None
        while True:
            command, path = conn.recv()
            if command == "start":
                outs = node.start(task)
                # Nothing of the records is needed once the node's own rows have left.
                node.records, node.prepared = (), {}
                conn.send([(o.to, *_spooled(o.rows)) for o in outs])
            elif command == "forward":
                out = node.forward(task, RowSet.from_file(Path(path)))
                os.unlink(path)
                conn.send([(out.to, *_spooled(out.rows))])
            elif command == "receive":
                assert joiner is not None
                joiner.receive(RowSet.from_file(Path(path)))
                conn.send([])
            elif command == "finish":
                assert joiner is not None
                conn.send_bytes(joiner.finish().to_bytes())
            elif command == "stats":
                spans = node.timings.spans + (joiner.timings.spans if joiner else [])
                conn.send({"peak_rss_mb": _peak_mb(), "spans": spans, "ops": engine.operations()})
                return


@dataclass
class IsolatedRun:
    """The result and what each party (and the relay) cost."""

    result: TallyResult
    seconds: float
    bytes_exchanged: int
    party_peak_rss_mb: dict[str, float]
    relay_peak_rss_mb: float
    timings: dict[str, float]  # per phase, the wall time some party spent in it
    ec_operations: int


def run_isolated(spec: Any, extracts: Mapping[str, Path], *, workers: int) -> IsolatedRun:
    """Run one tally with every node in its own process; the parent relays and decrypts.

    Row sets are spooled as files in a temporary directory, one directory per party.
    """
    with tempfile.TemporaryDirectory(prefix="crosstally-spool-") as tmp:
        return _run_isolated(spec, extracts, workers=workers, spool=Path(tmp))


def _run_isolated(
    spec: Any, extracts: Mapping[str, Path], *, workers: int, spool: Path
) -> IsolatedRun:
    hub = HubTally(spec)
    task = hub.task
    context = multiprocessing.get_context("spawn")
    conns: dict[str, Connection] = {}
    procs: list[Any] = []
    for name in task.ring:
        parent, child = context.Pipe()
        (spool / name).mkdir(parents=True, exist_ok=True)
        args = (name, str(extracts[name]), task, workers, str(spool / name), child)
        proc = context.Process(target=_party, args=args)
        proc.start()
        conns[name], procs = parent, [*procs, proc]
    start = time.perf_counter()
    sent = 0
    busy: dict[Connection, str] = {}
    pending: list[tuple[str, str]] = []
    for name, conn in conns.items():
        conn.send(("start", None))
        busy[conn] = name
    while busy or pending:
        for to, path in list(pending):
            if conns[to] in busy:
                continue
            pending.remove((to, path))
            applied = RowSet.from_file(Path(path)).applied
            full = to == task.joiner and set(applied) == set(task.ring)
            conns[to].send(("receive" if full else "forward", path))
            busy[conns[to]] = to
        for ready in wait(list(busy)):
            assert isinstance(ready, Connection)
            busy.pop(ready)
            for to, path, size in ready.recv():
                sent += size
                pending.append((to, path))
    joiner = conns[task.joiner]
    joiner.send(("finish", None))
    final = joiner.recv_bytes()
    sent += len(final)
    result = hub.finish(EncryptedTally.from_bytes(final))
    seconds = time.perf_counter() - start
    peaks, spans, ops = {}, list(hub.timings.spans), 0
    for name, conn in conns.items():
        conn.send(("stats", None))
        stats = conn.recv()
        peaks[name] = stats["peak_rss_mb"]
        ops += stats["ops"]
        spans += stats["spans"]
    for proc in procs:
        proc.join()
    return IsolatedRun(result, seconds, sent, peaks, _peak_mb(), wall_seconds(spans), ops)
