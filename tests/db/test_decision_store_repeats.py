"""An action decided again (the same join seen by a sweep) is queued once, and the audit log
says so; one skipped is queued again when decided again. Both found by the soak
(tests/support/soak.py)."""

from __future__ import annotations

from guardbot.core.actions import ActionState, Outcome
from guardbot.core.decision import AuditRecord
from guardbot.db.decision_store import REPEATED
from tests.support.stores import ROOM, Stores, joined, kick

GUEST = "@1:example.org"
DONE, SKIPPED = ActionState.DONE, ActionState.SKIPPED


def decided(at: int) -> AuditRecord:
    return AuditRecord(at, "guardbot", "decide Kick", ROOM, GUEST, "a join", "queued")


async def test_a_repeated_decision_queues_nothing_and_the_audit_says_so(stores: Stores) -> None:
    await stores.inbox.add([joined(GUEST, "$a"), joined(GUEST, "$sweep")], 1)
    first, second = await stores.inbox.take()
    await stores.settle(first.id, [kick(GUEST, "$a")], now=10, audit=(decided(10),))
    await stores.settle(second.id, [kick(GUEST, "$a")], now=11, audit=(decided(11),))
    assert len(await stores.actions.due(now=12)) == 1
    log = await stores.decisions.audit.find(room_id=ROOM, user_id=GUEST)
    assert [r.result for r in log if r.what == "decide Kick"] == ["queued", REPEATED]


async def test_an_action_skipped_is_queued_again_when_decided_again(stores: Stores) -> None:
    """Found by the soak: a guest's removal skipped while the room was briefly unlisted was
    never queued again when the room was listed again (the same key): the guest stayed."""
    action = kick(GUEST, "$a")
    await stores.actions.add([action], 1)
    (queued,) = await stores.actions.due(now=2)
    await stores.actions.finish(queued.id, Outcome(SKIPPED, "room is no longer listed"), 3)
    assert await stores.actions.add([action], 4) == 1
    (again,) = await stores.actions.due(now=5)
    assert again.action == action and again.attempts == 0
    await stores.actions.finish(again.id, Outcome(DONE, "removed"), 6)
    assert await stores.actions.add([action], 7) == 0  # done: never again
    assert await stores.actions.due(now=8) == []
