"""Each party of a tally in its own OS process, with the parent as the relay (bench only).

A real deployment runs nodes on separate machines; to measure what one party costs
(peak resident memory, its own worker pool) the benchmark does the same on one
machine: every node is a process that reads its own extract file, keeps its secret,
and exchanges only wire messages through the parent, which plays hub and relay.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from crosstally.extract import read_extract
from protocol.blinding import make_engine
from protocol.messages import EncryptedTally, RowSet, rowset_header
from protocol.tally import HubTally, Joiner, TallyNode, TallyResult, TallyTask


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, workers) / 1024


def _party(name: str, extract: str, task: TallyTask, workers: int, conn: Connection) -> None:
    """A node process: answers start/forward/receive/finish/stats commands from the relay."""
    data = read_extract(Path(extract))
    with make_engine(task.spec.linkage.curve, workers=workers) as engine:
        node = TallyNode(name, data.records, data.columns, engine=engine)
        joiner = Joiner(task) if task.joiner == name else None
        while True:
            command = conn.recv()
            if command == "start":
                conn.send([(o.to, o.rows.to_bytes()) for o in node.start(task)])
            elif command == "forward":
                out = node.forward(task, RowSet.from_bytes(conn.recv_bytes()))
                conn.send([(out.to, out.rows.to_bytes())])
            elif command == "receive":
                assert joiner is not None
                joiner.receive(RowSet.from_bytes(conn.recv_bytes()))
                conn.send([])
            elif command == "finish":
                assert joiner is not None
                conn.send_bytes(joiner.finish().to_bytes())
            elif command == "stats":
                timings = dict(node.timings)
                for phase, seconds in (joiner.timings if joiner else {}).items():
                    timings[phase] = timings.get(phase, 0.0) + seconds
                conn.send(
                    {"peak_rss_mb": _peak_mb(), "timings": timings, "ops": engine.operations()}
                )
                return


@dataclass
class IsolatedRun:
    """The result and what each party (and the relay) cost."""

    result: TallyResult
    seconds: float
    bytes_exchanged: int
    party_peak_rss_mb: dict[str, float]
    relay_peak_rss_mb: float
    timings: dict[str, float]
    ec_operations: int


def run_isolated(spec: Any, extracts: Mapping[str, Path], *, workers: int) -> IsolatedRun:
    """Run one tally with every node in its own process; the parent relays and decrypts."""
    hub = HubTally(spec)
    task = hub.task
    context = multiprocessing.get_context("spawn")
    conns: dict[str, Connection] = {}
    procs: list[Any] = []
    for name in task.ring:
        parent, child = context.Pipe()
        proc = context.Process(
            target=_party, args=(name, str(extracts[name]), task, workers, child)
        )
        proc.start()
        conns[name], procs = parent, [*procs, proc]
    start = time.perf_counter()
    sent = 0
    busy: dict[Connection, str] = {}
    pending: list[tuple[str, bytes]] = []
    for name, conn in conns.items():
        conn.send("start")
        busy[conn] = name
    while busy or pending:
        for to, wire in list(pending):
            if conns[to] in busy:
                continue
            pending.remove((to, wire))
            applied = rowset_header(wire)["applied"]
            full = to == task.joiner and set(applied) == set(task.ring)
            conns[to].send("receive" if full else "forward")
            conns[to].send_bytes(wire)
            busy[conns[to]] = to
        for ready in wait(list(busy)):
            assert isinstance(ready, Connection)
            busy.pop(ready)
            for to, wire in ready.recv():
                sent += len(wire)
                pending.append((to, wire))
    joiner = conns[task.joiner]
    joiner.send("finish")
    final = joiner.recv_bytes()
    sent += len(final)
    result = hub.finish(EncryptedTally.from_bytes(final))
    seconds = time.perf_counter() - start
    peaks, timings, ops = {}, dict(hub.timings), 0
    for name, conn in conns.items():
        conn.send("stats")
        stats = conn.recv()
        peaks[name] = stats["peak_rss_mb"]
        ops += stats["ops"]
        for phase, value in stats["timings"].items():
            timings[phase] = timings.get(phase, 0.0) + value
    for proc in procs:
        proc.join()
    return IsolatedRun(result, seconds, sent, peaks, _peak_mb(), timings, ops)
