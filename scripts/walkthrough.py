"""A first deployment end to end, as agency IT and a hub operator do it, through the CLI.

    .venv/bin/python scripts/walkthrough.py [--people 5000] [--keep DIR]

A hub on PostgreSQL (a fresh database of its own on --postgres, dropped at the end), DCF
and JB-CSSD nodes as separate `crosstally node serve` processes on synthetic extracts
(`crosstally synth`): enrolment, agreements added at each node with `node agreement add`,
`node check --hub`, the crossover query, the analyst's read, the audit verification, a
`kill -9` of DCF and of the hub mid-query and their restarts, a steward's hold then
approve, another hold then reject, and a bad extract (a stray quote, an invalid date)
checked with `node check`.
Each step prints its time and outcome; the script exits 1 if any outcome is not the
expected one. Every step runs the project's own commands as subprocesses.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from services.hub_api import HubAPI
from services.loopback import HUB_COMMAND, NODE_COMMAND, Service, command, free_port

POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
AGENCIES = ("DCF", "JBCSSD")
TODAY = dt.date.today().isoformat()


class StepFailed(Exception):
    """A step's outcome is not the expected one; the message says what happened."""


@dataclass
class Walk:
    """The steps run so far, and what every step needs: directories, URLs, tokens."""

    root: Path
    people: int
    steps: list[tuple[str, float, bool, str]] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    services: dict[str, Service] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    hub_url: str = ""
    notes: dict[str, object] = field(default_factory=dict)

    def step(self, name: str, action: Callable[[], str]) -> bool:
        """Run one step; print its time and outcome."""
        started = time.monotonic()
        try:
            outcome, ok = action(), True
        except StepFailed as exc:
            outcome, ok = str(exc), False
        except Exception as exc:  # a step that breaks is a step whose outcome was unexpected
            outcome, ok = f"{exc.__class__.__name__}: {exc}", False
        took = time.monotonic() - started
        self.steps.append((name, took, ok, outcome))
        mark = "ok  " if ok else "FAIL"
        print(f"{len(self.steps):>3}. {mark} {took:7.1f} s  {name}")
        for line in outcome.splitlines():
            print(f"{'':21}{line}")
        sys.stdout.flush()
        return ok

    def run(
        self, *args: str, expect: int = 0, token: str | None = None, stdout_only: bool = False
    ) -> str:
        """`crosstally ARGS` as a subprocess; its output, or StepFailed on another exit code."""
        env = dict(self.env)
        if token is not None:
            env["CROSSTALLY_TOKEN"] = self.tokens[token]
        done = subprocess.run(
            command(["crosstally", *args]),
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        output = done.stdout if stdout_only else (done.stdout + done.stderr).strip()
        if done.returncode != expect:
            raise StepFailed(
                f"`crosstally {' '.join(args)}` exited {done.returncode}, expected {expect}:\n"
                + "\n".join(output.splitlines()[-15:])
            )
        return output

    def node_dir(self, agency: str) -> Path:
        return self.root / "nodes" / agency.lower()

    def config(self, agency: str) -> str:
        return str(self.node_dir(agency) / "node.toml")

    def api(self, who: str) -> HubAPI:
        return HubAPI(self.hub_url, self.tokens[who])


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise StepFailed(message)


def flat(text: str) -> str:
    """Output with line wrapping and table borders undone, to look for a phrase in."""
    return " ".join(text.replace("│", " ").replace("┃", " ").split())


def measure(table: str, name: str) -> int:
    """A number from `node check`'s table."""
    row = next(x for x in table.splitlines() if name in x)
    return int(flat(row).split()[-1].replace(",", ""))


def tail(text: str, lines: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A database of the walk-through's own on the server at `url`, dropped afterwards."""
    import psycopg
    from sqlalchemy.engine import make_url

    server = make_url(url)
    conninfo = server.set(drivername="postgresql").render_as_string(hide_password=False)
    name = f"crosstally_walkthrough_{secrets.token_hex(4)}"
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_up(walk: Walk, database_url: str) -> None:
    root = walk.root
    extracts = root / "extracts"
    walk.env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSTALLY_")}
    walk.env["COLUMNS"] = "160"  # rich wraps its output at 80 columns without a terminal

    def synth() -> str:
        out = walk.run("synth", "--out", str(extracts), "--people", str(walk.people), "--seed", "7")
        rows = {a: len((extracts / f"{a.lower()}.csv").read_text().splitlines()) - 1
                for a in AGENCIES}  # fmt: skip
        expect(all(rows.values()), f"empty extracts: {rows}; {out}")
        return f"{walk.people:,} people; DCF {rows['DCF']:,} rows, JB-CSSD {rows['JBCSSD']:,}"

    walk.step("synthetic extracts (crosstally synth)", synth)

    port = free_port()
    walk.hub_url = f"http://127.0.0.1:{port}"
    walk.tokens["admin"] = secrets.token_urlsafe(32)
    walk.env.update(CROSSTALLY_HUB_URL=walk.hub_url)
    hub_env = {
        **walk.env,
        "CROSSTALLY_HUB_DATABASE_URL": database_url,
        "CROSSTALLY_HUB_ADMIN_TOKEN": walk.tokens["admin"],
        "CROSSTALLY_HUB_KEY_ENCRYPTION_KEY": base64.b64encode(os.urandom(32)).decode(),
        "CROSSTALLY_HUB_PORT": str(port),
    }

    def hub() -> str:
        migrated = subprocess.run(command(["crosstally", "hub", "migrate"]), env=hub_env,
                                  capture_output=True, text=True, check=False)  # fmt: skip
        expect(migrated.returncode == 0, f"hub migrate: {tail(migrated.stderr)}")
        service = Service("hub", command(HUB_COMMAND), hub_env, f"{walk.hub_url}/healthz",
                          root / "hub.log")  # fmt: skip
        walk.services["hub"] = service
        service.start()
        walk.run("hub", "health", "--url", walk.hub_url)
        return f"migrated, serving at {walk.hub_url} on PostgreSQL; hub health exits 0"

    walk.step("hub on PostgreSQL: hub migrate, hub serve, hub health", hub)

    def init() -> str:
        for agency in AGENCIES:
            walk.ports[agency] = free_port()
            csv = extracts / f"{agency.lower()}.csv"
            walk.run("node", "init", "--agency", agency, "--dir", str(walk.node_dir(agency)),
                     "--hub-url", walk.hub_url, "--extract", str(csv),
                     "--admin-port", str(walk.ports[agency]))  # fmt: skip
        # JB-CSSD's IT holds tasks outside its agreements for the steward (node.toml).
        config = Path(walk.config("JBCSSD"))
        text = config.read_text()
        expect('on_unlisted = "refuse"' in text, "node init wrote no on_unlisted")
        config.write_text(text.replace('on_unlisted = "refuse"', 'on_unlisted = "hold"'))
        return "DCF and JBCSSD: keys, node.toml; JB-CSSD holds unlisted tasks for its steward"

    walk.step("node init (two agencies, own admin ports)", init)

    def enroll() -> str:
        for agency in AGENCIES:
            directory = walk.node_dir(agency)
            walk.run("admin", "enroll", str(directory / f"{agency.lower()}.public.json"),
                     "--credential-out", str(directory / "credential"), token="admin")  # fmt: skip
            mode = (directory / "credential").stat().st_mode & 0o777
            expect(mode == 0o600, f"{agency}'s credential file has mode {mode:o}")
        return "both enrolled; credentials written mode 0600, only the token"

    walk.step("admin enroll --credential-out", enroll)

    def agreement() -> str:
        draft = walk.run(
            "admin", "agreement", "draft", "crossover-youth", "--analyst", "ana", stdout_only=True
        )
        (root / "DSA-2024-007.json").write_text(draft + "\n")
        out = walk.run("admin", "agreement", "create", str(root / "DSA-2024-007.json"),
                       token="admin")  # fmt: skip
        for agency in AGENCIES:
            added = walk.run("node", "agreement", "add", str(root / "DSA-2024-007.json"),
                             "--config", walk.config(agency), "--yes")  # fmt: skip
            expect("added" in flat(added), f"{agency}: {tail(added)}")
        return f"{out}; added at DCF and JB-CSSD with `node agreement add --yes`"

    walk.step("agreement drafted, recorded at the hub, added at both nodes", agreement)

    def check() -> str:
        lines = []
        for agency in AGENCIES:
            out = walk.run("node", "check", "--config", walk.config(agency), "--hub")
            expect("the hub accepts the credential" in flat(out), f"{agency}: {tail(out)}")
            expect("agreements signed: DSA-2024-007" in flat(out), f"{agency}: {tail(out)}")
            kept, excluded = measure(out, "records kept"), measure(out, "rows excluded")
            lines.append(f"{agency}: {kept:,} records kept, {excluded:,} rows excluded; hub and "
                         "credential ok")  # fmt: skip
        return "\n".join(lines)

    walk.step("node check --hub (extract, keys, agreements, hub, credential)", check)

    def serve() -> str:
        for agency in AGENCIES:
            start_node(walk, agency)
        states = [walk.run("node", "health", "--config", walk.config(a)) for a in AGENCIES]
        return "\n".join(states)

    walk.step("node serve (two processes), node health", serve)

    def people() -> str:
        for name, role in (("olga", "operator"), ("ana", "analyst"), ("audrey", "auditor")):
            out = walk.run("admin", "credential", "issue", name, "--role", role, token="admin")
            walk.tokens[role] = out.split()[-1]
        return "operator olga, analyst ana, auditor audrey"

    walk.step("admin credential issue (operator, analyst, auditor)", people)


def start_node(walk: Walk, agency: str) -> None:
    directory = walk.node_dir(agency)
    service = Service(
        f"node {agency}",
        command([*NODE_COMMAND, walk.config(agency)]),
        walk.env,
        f"http://127.0.0.1:{walk.ports[agency]}/healthz",
        directory / "node.log",
    )
    walk.services[agency] = service
    service.start()


def submitted_id(output: str) -> str:
    words = output.split()
    return words[words.index("submitted") + 1]


def result_table(walk: Walk, query_id: str) -> dict[str, object]:
    out = walk.run("query", "result", query_id, "--json", token="analyst", stdout_only=True)
    table: dict[str, object] = json.loads(out)["table"]
    return table


def queries(walk: Walk) -> None:
    def crossover() -> str:
        out = walk.run("query", "submit", "crossover-youth", "--as-of", TODAY, "--wait",
                       token="operator")  # fmt: skip
        expect("released" in flat(out), tail(out))
        walk.notes["first"] = submitted_id(out)
        return flat(tail(out, 1))

    walk.step("query submit crossover-youth --wait (operator)", crossover)

    def read() -> str:
        query_id = str(walk.notes.get("first", ""))
        table = result_table(walk, query_id)
        walk.notes["table"] = table
        text = walk.run("query", "result", query_id, token="analyst")
        total = table.get("total")
        count = total.get("count") if isinstance(total, dict) else total
        return f"the table: {len(text.splitlines())} lines; crossover youth in all: {count}"

    walk.step("query result (analyst)", read)

    def audit() -> str:
        out = walk.run("admin", "audit", "--verify", token="auditor")
        expect("audit chain ok" in flat(out), out)
        return out

    walk.step("admin audit --verify (auditor)", audit)

    def kill() -> str:
        with walk.api("operator") as api:
            out = walk.run("query", "submit", "crossover-youth", "--as-of", TODAY,
                           token="operator")  # fmt: skip
            query_id = submitted_id(out)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                detail = api.query(query_id)
                dcf = [t for t in detail.tasks if t.node == "DCF"]
                if detail.status != "running" or any(t.status == "leased" for t in dcf):
                    break
                time.sleep(0.05)
            expect(detail.status == "running", f"the query ended ({detail.status}) before the "
                   "kill: run with more --people")  # fmt: skip
            walk.services["DCF"].kill()  # SIGKILL: nothing cleaned up
            at_kill = ", ".join(f"{t.kind} {t.node} {t.status}" for t in api.query(query_id).tasks)
            time.sleep(2)
            expect(api.query(query_id).status == "running", "the query did not wait for DCF")
            start_node(walk, "DCF")
            detail = api.wait(query_id, timeout=600)
        expect(detail.status == "released", f"after the restart: {detail.status} {detail.error}")
        same = result_table(walk, query_id) == walk.notes.get("table")
        expect(same, "the released table differs from the first run's")
        return f"killed with tasks: {at_kill}\nrestarted; released the same table as before"

    walk.step("kill -9 DCF mid-query, restart it: same table", kill)

    def kill_hub() -> str:
        out = walk.run("query", "submit", "crossover-youth", "--as-of", TODAY, token="operator")
        query_id = submitted_id(out)
        with walk.api("operator") as api:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                detail = api.query(query_id)
                if detail.status != "running" or any(t.status == "leased" for t in detail.tasks):
                    break
                time.sleep(0.05)
            expect(detail.status == "running", f"the query ended ({detail.status}) before the "
                   "kill: run with more --people")  # fmt: skip
            at_kill = ", ".join(f"{t.kind} {t.node} {t.status}" for t in detail.tasks)
        walk.services["hub"].kill()  # SIGKILL: the hub's store is all that survives
        time.sleep(2)
        walk.services["hub"].start()  # the same database and key-encryption key
        with walk.api("operator") as api:
            detail = api.wait(query_id, timeout=900)
        expect(detail.status == "released", f"after the restart: {detail.status} {detail.error}")
        same = result_table(walk, query_id) == walk.notes.get("table")
        expect(same, "the released table differs from the first run's")
        return (
            f"killed with tasks: {at_kill}\nrestarted; the nodes reconnected and the same "
            "table was released"
        )

    walk.step("kill -9 the hub mid-query, restart it: same table", kill_hub)


def stewards(walk: Walk) -> None:
    from crosstally.templates import load_template

    root = walk.root
    spec = {**load_template("crossover-youth"), "agreement": "DSA-2024-008"}
    (root / "amended.json").write_text(json.dumps(spec))

    def second_agreement() -> str:
        draft = walk.run("admin", "agreement", "draft", str(root / "amended.json"),
                         "--analyst", "ana", stdout_only=True)  # fmt: skip
        (root / "DSA-2024-008.json").write_text(draft + "\n")
        walk.run("admin", "agreement", "create", str(root / "DSA-2024-008.json"), token="admin")
        walk.run("node", "agreement", "add", str(root / "DSA-2024-008.json"),
                 "--config", walk.config("DCF"), "--yes")  # fmt: skip
        return "DSA-2024-008 recorded at the hub and added at DCF (DCF's node running); not at JB"

    walk.step("a second agreement, signed so far by DCF only", second_agreement)

    def held(decide: list[str], status: str) -> Callable[[], str]:
        def action() -> str:
            out = walk.run("query", "submit", str(root / "amended.json"), "--as-of", TODAY,
                           token="operator")  # fmt: skip
            query_id = submitted_id(out)
            with walk.api("operator") as api:
                deadline = time.monotonic() + 120
                while api.query(query_id).status != "held" and time.monotonic() < deadline:
                    time.sleep(0.2)
                expect(api.query(query_id).status == "held", "the query was not held")
                listed = walk.run("node", "held", "--config", walk.config("JBCSSD"))
                for needed in (
                    "your cohort jj: records where juvenile_cases >= 1",
                    "columns it reads from JBCSSD",
                    "partners: DCF",
                    "joiner:",
                ):
                    expect(needed in flat(listed), f"node held lacks {needed!r}")
                walk.run("node", *decide[:1], query_id, "--config", walk.config("JBCSSD"),
                         *decide[1:])  # fmt: skip
                detail = api.wait(query_id, timeout=300)
            expect(detail.status == status, f"{detail.status}, expected {status}: {detail.error}")
            shown = "\n".join([x for x in listed.splitlines() if x.startswith("  ")][:7])
            end = f"{detail.status}" + (f": {detail.error}" if detail.error else "")
            return f"held at JB-CSSD; node held showed:\n{shown}\n...\n{end}"

        return action

    walk.step("steward holds, then approves: released",
              held(["approve", "--steward", "jj.steward"], "released"))  # fmt: skip
    walk.step("steward holds, then rejects: failed with the reason",
              held(["reject", "--steward", "jj.steward", "--reason", "not in our MOU"],
                   "failed"))  # fmt: skip


def bad_extract(walk: Walk) -> None:
    def check() -> str:
        source = walk.root / "extracts" / "dcf.csv"
        lines = source.read_text().splitlines()
        # The header is line 1. Line 22: a stray quote opens the first name; line 30: a
        # date of birth that does not exist.
        row = lines[21].split(",")
        row[2] = '"' + row[2]
        lines[21] = ",".join(row)
        row = lines[29].split(",")
        row[6] = "2001-02-30"
        lines[29] = ",".join(row)
        bad = walk.root / "extracts" / "dcf-bad.csv"
        bad.write_text("\n".join(lines) + "\n")
        directory = walk.root / "nodes" / "dcf-bad"
        directory.mkdir()
        shutil.copy(walk.node_dir("DCF") / "node.keys.json", directory)
        shutil.copy(walk.node_dir("DCF") / "credential", directory)
        # The same node.toml beside a copy of DCF's keys and credential: relative paths
        # (keys, credential, data) resolve in the copy's directory; the extract is absolute.
        config = Path(walk.config("DCF")).read_text().replace(str(source), str(bad))
        (directory / "node.toml").write_text(config)
        out = walk.run("node", "check", "--config", str(directory / "node.toml"))
        rows, text = len(lines) - 1, flat(out)
        read, excluded = measure(out, "rows read"), measure(out, "rows excluded")
        expect(read == rows, f"{read:,} rows read of {rows:,}:\n{tail(out, 20)}")
        expect(excluded == 1, f"{excluded} rows excluded, expected 1 (line 22)")
        expect("line 22" in text and "no quote closes" in text, f"line 22 not named: {tail(out)}")
        expect("not a real date" in text, f"the invalid date was not reported: {tail(out)}")
        strict = walk.run("node", "check", "--config", str(directory / "node.toml"), "--strict",
                          expect=1)  # fmt: skip
        expect("rows excluded (--strict)" in flat(strict), tail(strict))
        problems = [x.strip() for x in out.splitlines() if "line " in x][:2]
        return "\n".join([f"all {rows:,} rows read, 1 excluded; reported:", *problems,
                          "node check --strict exits 1"])  # fmt: skip

    walk.step("a bad extract (stray quote on line 22, invalid date on line 30): node check", check)


def finish(walk: Walk) -> None:
    def verify() -> str:
        out = [walk.run("admin", "audit", "--verify", token="auditor")]
        for agency in AGENCIES:
            out.append(f"{agency}: " + walk.run("node", "log", "--verify", "--config",
                                                walk.config(agency)))  # fmt: skip
        return "\n".join(out)

    walk.step("audit and both outbound logs verify", verify)


def stop(walk: Walk) -> None:
    for name in ("DCF", "JBCSSD", "hub"):
        service = walk.services.get(name)
        if service is not None:
            service.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=5000, help="synthetic population")
    parser.add_argument("--postgres", default=POSTGRES, help="a PostgreSQL server to use")
    parser.add_argument("--keep", type=Path, default=None, help="keep logs and files here")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="crosstally-walkthrough-"))
    root.mkdir(parents=True, exist_ok=True)
    walk = Walk(root, args.people)
    print(f"walk-through in {root}, {TODAY}")
    started = time.monotonic()
    try:
        with postgres_database(args.postgres) as url:
            try:
                set_up(walk, url)
                queries(walk)
                stewards(walk)
                bad_extract(walk)
                finish(walk)
            finally:
                stop(walk)
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    failed = [s for s in walk.steps if not s[2]]
    took = time.monotonic() - started
    print(f"{len(walk.steps) - len(failed)} of {len(walk.steps)} steps as expected, {took:.0f} s")
    if failed:
        print("not as expected: " + "; ".join(s[0] for s in failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
