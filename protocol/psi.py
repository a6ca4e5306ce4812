"""Exact-key PSI cardinality: openmined-psi's two-party count on one key group.

The client node sends a request of its blinded keys; the server node answers with a
setup message (its own keys, GCS or RAW) and its response to the request; the
client learns only |A ∩ B| and reports it. This is the cheapest count; it is exact
on one key, so typos miss. The error-tolerant count is a tally without group-by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from private_set_intersection.python import DataStructure, Request, Response, ServerSetup
from private_set_intersection.python import client as psi_client
from private_set_intersection.python import server as psi_server

from protocol.cohort import PreparedCohort
from protocol.errors import InvalidSpec, MalformedMessage
from protocol.linkage.keys import KeyProfile, fill_slots

FPR = 1e-9
STRUCTURES = {"gcs": DataStructure.GCS, "raw": DataStructure.RAW}


def exact_keys(prepared: PreparedCohort, profile: KeyProfile, group: str) -> list[bytes]:
    """One item per person: the person's token of `group` (random if they have none)."""
    index = [g.name for g in profile.groups].index(group)
    start, _ = profile.group_slices[index]
    return [fill_slots([row[start]])[0] for row in prepared.slots]


@dataclass(frozen=True)
class CountRequest:
    """Client → server: the client's blinded keys (openmined-psi Request protobuf)."""

    query_id: str
    request: bytes


@dataclass(frozen=True)
class CountReply:
    """Server → client: setup message with the server's keys and the processed request."""

    query_id: str
    setup: bytes
    response: bytes


class CountClient:
    """The side that learns |A ∩ B| (and reports it to the hub)."""

    def __init__(self, query_id: str) -> None:
        self.query_id = query_id
        self._client = psi_client.CreateWithNewKey(False)

    def request(self, items: Sequence[bytes]) -> CountRequest:
        req = self._client.CreateRequest(list(items))
        return CountRequest(self.query_id, req.SerializeToString())

    def count(self, reply: CountReply) -> int:
        if reply.query_id != self.query_id:
            raise MalformedMessage("count reply belongs to another query")
        setup, response = ServerSetup(), Response()
        try:
            setup.ParseFromString(reply.setup)
            response.ParseFromString(reply.response)
            return int(self._client.GetIntersectionSize(setup, response))
        except Exception as exc:  # protobuf and the C++ core raise several types
            raise MalformedMessage(f"count reply could not be processed: {exc}") from exc


def answer_count(
    request: CountRequest, items: Sequence[bytes], *, structure: str = "gcs"
) -> CountReply:
    """The server side: a fresh key, a setup message of its items, and the processed request."""
    if structure not in STRUCTURES:
        raise InvalidSpec(f"setup structure {structure!r} is not one of {', '.join(STRUCTURES)}")
    server = psi_server.CreateWithNewKey(False)
    req = Request()
    try:
        req.ParseFromString(request.request)
        response = server.ProcessRequest(req)
    except Exception as exc:
        raise MalformedMessage(f"count request could not be processed: {exc}") from exc
    setup = server.CreateSetupMessage(
        FPR, len(req.encrypted_elements), list(items), STRUCTURES[structure]
    )
    return CountReply(request.query_id, setup.SerializeToString(), response.SerializeToString())
