"""`node check --hub`: can this node reach its hub, and does the hub accept its credential?

Nothing here leases a task or changes the hub's state: the credential is tried on a
read-only node route (fetching a relayed part of a query that cannot exist), which the
hub answers only after it has authenticated the node.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from services.agency_node.config import NodeSettings
from services.wire import NODE_HEADER

# No query has this id (the hub draws 128 random bits); the step is well formed.
PROBE_PATH = "/v1/node/mailbox/" + "0" * 32 + "/rows:check:1"


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_hub(settings: NodeSettings, *, timeout: float = 10.0) -> list[Check]:
    """The hub's health, then the node's credential; a check that cannot run is not run."""
    base = settings.hub_url.rstrip("/")
    with httpx.Client(base_url=base, timeout=timeout, verify=settings.hub_verify()) as http:
        reach = _reach(http, base)
        if not reach.ok:
            return [reach]
        return [reach, _credential(http, settings)]


def _reach(http: httpx.Client, base: str) -> Check:
    try:
        response = http.get("/healthz")
    except httpx.HTTPError as exc:
        return Check(
            "hub",
            False,
            f"cannot reach the hub at {base} ({exc.__class__.__name__}: {exc}); check hub_url, "
            "the name resolves, and that a firewall or proxy lets this host connect out",
        )
    try:
        body = response.json()
        version = str(body["version"])
        healthy = response.status_code == 200 and body.get("status") == "ok"
    except (ValueError, KeyError, TypeError):
        return Check(
            "hub",
            False,
            f"{base}/healthz answered {response.status_code} but not as a crosstally hub "
            "does; hub_url should be the hub's base URL, without /v1",
        )
    if not healthy:
        return Check("hub", False, f"the hub at {base} is not healthy: {response.text[:200]}")
    return Check("hub", True, f"{base} answers: crosstally hub {version}")


def _credential(http: httpx.Client, settings: NodeSettings) -> Check:
    try:
        token = settings.token()
    except ValueError as exc:
        return Check("credential", False, str(exc))
    if not token:
        return Check(
            "credential",
            False,
            "no credential: set credential_file to the file `crosstally admin enroll "
            "--credential-out` wrote",
        )
    headers = {"Authorization": f"Bearer {token}", NODE_HEADER: settings.agency}
    try:
        response = http.get(PROBE_PATH, params={"part": 0}, headers=headers)
    except httpx.HTTPError as exc:
        return Check("credential", False, f"the hub stopped answering: {exc}")
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.text[:200]
    if response.status_code == 404 and message.startswith("no query"):
        accepted = f"the hub accepts the credential of node {settings.agency}"
        return Check("credential", True, accepted)
    if response.status_code == 401:
        return Check(
            "credential",
            False,
            f"the hub refuses this credential ({message}): check credential_file holds the "
            "token `crosstally admin enroll` gave this node; if it was revoked or the node "
            "deactivated, the hub administrator enrolls it again",
        )
    if response.status_code == 403:
        return Check("credential", False, f"the hub refuses node {settings.agency}: {message}")
    return Check(
        "credential",
        False,
        f"unexpected answer {response.status_code} from the hub: {message}; is hub_url the "
        "hub's base URL, without /v1?",
    )
