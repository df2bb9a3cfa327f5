"""The action queue (db/action_store.py), on every supported database: each action queued once
ever, due when its time comes, retried and woken as told, and what it found stored with its
outcome."""

from __future__ import annotations

from guardbot.core.actions import ActionState, Outcome, Sweep, WaitingOn
from guardbot.core.decision import (
    AuditRecord,
)
from guardbot.core.observations import (
    MemberFound,
)
from tests.support.queries import action_history
from tests.support.stores import OTHER, ROOM, Stores, kick, observations

DONE, PENDING, SKIPPED = ActionState.DONE, ActionState.PENDING, ActionState.SKIPPED


async def test_action_is_queued_once_ever(stores: Stores) -> None:
    assert await stores.actions.add([kick(), kick("@2:example.org")], now=1) == 2
    assert await stores.actions.add([kick(), Sweep(ROOM, "$j1")], now=2) == 1
    (first, *_) = await stores.actions.due(now=2)
    await stores.actions.finish(first.id, Outcome(DONE, "kicked"), now=3)
    # Reached again long after it was carried out: still not queued a second time.
    assert await stores.actions.add([kick()], now=4) == 0
    history = await action_history(stores.actions.db)
    assert [(h["kind"], h["state"]) for h in history] == [
        ("Kick", DONE),
        ("Kick", PENDING),
        ("Sweep", PENDING),
    ]
    assert history[0]["outcome"] == "kicked"


async def test_due_honours_time_and_state(stores: Stores) -> None:
    await stores.actions.add([kick("@1:example.org")], now=1000)
    await stores.actions.add([kick("@2:example.org")], now=2000)
    assert await stores.actions.due(now=999) == []
    assert [q.action.user_id for q in await stores.actions.due(now=1000)] == ["@1:example.org"]
    first, second = await stores.actions.due(now=2000)
    assert await stores.actions.next_due_at() == 1000
    await stores.actions.finish(first.id, Outcome(SKIPPED, "left already"), now=2000)
    assert await stores.actions.due(now=10**12) == [second]
    assert await stores.actions.next_due_at() == 2000
    assert await stores.actions.due(now=10**12, limit=0) == []


async def test_retry_postpones_and_counts_attempts(stores: Stores) -> None:
    await stores.actions.add([kick()], now=1000)
    (queued,) = await stores.actions.due(now=1000)
    assert queued.attempts == 0
    await stores.actions.retry_at(queued.id, 5000, WaitingOn.ROOM, "M_FORBIDDEN")
    assert await stores.actions.due(now=4999) == []
    await stores.actions.retry_at(queued.id, 6000, WaitingOn.ROOM, "M_FORBIDDEN")
    assert await stores.actions.due(now=5999) == []
    (again,) = await stores.actions.due(now=6000)
    assert (again.id, again.action, again.attempts) == (queued.id, kick(), 2)
    assert (await action_history(stores.actions.db))[0]["outcome"] == "M_FORBIDDEN"


async def test_wake_room_brings_only_that_rooms_actions_forward(stores: Stores) -> None:
    here = [kick("@1:example.org"), kick("@2:example.org")]
    there = kick("@3:example.org", room=OTHER)
    await stores.actions.add([*here, there], now=1000)
    for queued in await stores.actions.due(now=1000):
        await stores.actions.retry_at(queued.id, 60_000, WaitingOn.ROOM, "no power")
    await stores.actions.wake_room(ROOM, now=2000)
    assert [q.action for q in await stores.actions.due(now=2000)] == here
    assert await stores.actions.next_due_at() == 2000
    # Waking never pushes an action that is already due later.
    await stores.actions.wake_room(ROOM, now=3000)
    assert [q.action for q in await stores.actions.due(now=2000)] == here


async def test_only_what_waits_for_the_homeserver_goes_when_it_is_back(stores: Stores) -> None:
    waiting = [kick("@1:example.org"), kick("@2:example.org"), kick("@3:example.org")]
    await stores.actions.add(waiting, now=1000)
    first, second, third = await stores.actions.due(now=1000)
    await stores.actions.retry_at(first.id, 60_000, WaitingOn.HOMESERVER, "homeserver trouble")
    await stores.actions.retry_at(second.id, 60_000, WaitingOn.ROOM, "no power")
    await stores.actions.retry_at(third.id, 60_000, WaitingOn.RATE_LIMIT, "slow down")
    await stores.actions.wake_waiting_on(WaitingOn.HOMESERVER, now=2000)
    assert [q.id for q in await stores.actions.due(now=2000)] == [first.id]


async def test_what_a_sweep_found_goes_to_the_inbox_with_its_outcome(stores: Stores) -> None:
    await stores.actions.add([Sweep(ROOM, "$s")], now=1)
    (sweep,) = await stores.actions.due(now=1)
    found = [MemberFound(ROOM, f"@{n}:example.org", f"$m{n}", "join", True) for n in (1, 2)]
    outcome = Outcome(DONE, "2 members")
    audit = AuditRecord(
        2, "guardbot", "Sweep", ROOM, None, "caused by $s", "done: 2 members", state=DONE
    )
    await stores.actions.finish(sweep.id, outcome, now=2, audit=audit, found=found)
    assert await observations(stores) == found
    assert [(h["state"], h["outcome"]) for h in await action_history(stores.actions.db)] == [
        (DONE, "2 members")
    ]
    assert await stores.decisions.audit.count_done("Sweep", room_id=ROOM) == 1
