"""Partner keys, pinned at first use: the hub relays keys but cannot swap them unnoticed.

Every task carries the enrolled public keys of the parties it exchanges envelopes with.
A hub that replaced one (its own keys in place of JB-CSSD's) could open what this node
seals to JB-CSSD. So the node pins each partner's keys the first time it sees them (or
earlier, from the partner's public key file, on the steward's word) and refuses every task
that carries other keys, until its steward confirms the new fingerprint with the partner
and trusts it (`crosstally node trust`). The node also refuses a task in which the hub
holds other keys for this node than its own key file: partners would seal to the wrong key.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping

from protocol.envelope import PublicParty
from services.agency_node.keys import fingerprint
from services.agency_node.store import NodeStore
from services.wire import PartyKeysOut

log = logging.getLogger("crosstally.node")


def _decode(agency: str, keys: PartyKeysOut) -> tuple[bytes, bytes] | str:
    try:
        box = base64.b64decode(keys.box_key, validate=True)
        verify = base64.b64decode(keys.verify_key, validate=True)
    except (binascii.Error, ValueError):
        return f"the task's keys for {agency} are not base64"
    if len(box) != 32 or len(verify) != 32:
        return f"the task's keys for {agency} are not 32 bytes each"
    return box, verify


def key_problems(
    store: NodeStore,
    parties: Mapping[str, PartyKeysOut],
    *,
    agency: str,
    own: PublicParty,
    query_id: str,
) -> list[str]:
    """Why the node must not run a task with these partner keys, if it must not.

    Pins the keys of a partner seen for the first time. A partner whose keys differ from
    the pin is refused, and the new keys are kept for the steward to confirm or ignore.
    """
    pinned = store.partner_keys()
    problems = []
    for name, keys in sorted(parties.items()):
        decoded = _decode(name, keys)
        if isinstance(decoded, str):
            problems.append(decoded)
            continue
        box, verify = decoded
        if name == agency:
            if (box, verify) != (own.box_key, own.verify_key):
                problems.append(
                    f"the hub holds other keys for {agency} ({fingerprint(box, verify)}) than "
                    f"this node's key file ({fingerprint(own.box_key, own.verify_key)}): "
                    "partners would seal to a key this node does not have. If the key file "
                    "was replaced, enrol its public half again (`crosstally admin enroll`); "
                    "if not, ask the hub operator why the hub's record changed"
                )
            continue
        pin = pinned.get(name)
        if pin is None:
            store.pin_key(name, box, verify, source=f"first use, query {query_id}")
            log.info("pinned %s's keys at first use: %s", name, fingerprint(box, verify))
            continue
        if (box, verify) == (pin.box_key, pin.verify_key):
            continue
        store.offer_key(name, box, verify, query_id=query_id)
        new = fingerprint(box, verify)
        problems.append(
            f"the hub sent other keys for {name} ({new}) than those this node pinned on "
            f"{pin.at[:10]} ({pin.fingerprint}). If {name} made new keys, confirm the new "
            f"fingerprint with {name}'s IT by phone or in person, then run `crosstally node "
            f'trust {name} --fingerprint "{new}" --steward NAME --config node.toml` and ask '
            "the operator to submit the query again; if not, tell the hub operator"
        )
    return problems
