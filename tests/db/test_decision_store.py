"""Storing a decision (db/decision_store.py), on every supported database: the observation
leaves the inbox in the transaction that stores its actions, audit and records, or nothing
happens."""

from __future__ import annotations

import sqlite3

import asyncpg
import pytest

from guardbot.core.actions import ActionState, ForbidGuestAccess, Kick, WaitingOn
from guardbot.core.decision import (
    AuditRecord,
    DryRunSwitch,
    RoomClassified,
    RoomPolicySetting,
    RoomWoken,
)
from tests.support.queries import action_history
from tests.support.stores import OTHER, ROOM, Stores, joined, kick, observations

DONE, PENDING, SKIPPED = ActionState.DONE, ActionState.PENDING, ActionState.SKIPPED


async def test_settle_moves_an_observation_to_the_action_queue(stores: Stores) -> None:
    await stores.inbox.add([joined("@1:example.org", "$a"), joined("@2:example.org", "$b")], 1)
    first, second = await stores.inbox.take()
    decided = [ForbidGuestAccess(ROOM, "$a"), kick("@1:example.org", "$a")]
    await stores.settle(first.id, decided, now=10)
    assert await observations(stores) == [second.observation]
    assert [q.action for q in await stores.actions.due(now=10)] == decided
    await stores.settle(second.id, [], now=11)
    assert await stores.inbox.size() == 0
    assert await stores.actions.count(PENDING) == 2


async def test_settle_is_all_or_nothing(stores: Stores) -> None:
    await stores.inbox.add([joined("@1:example.org", "$a")], 1)
    (row,) = await stores.inbox.take()
    unstorable = Kick(ROOM, "@1:example.org", object(), "$a")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await stores.settle(row.id, [ForbidGuestAccess(ROOM, "$a"), unstorable], now=10)
    # Neither the first action nor the removal from the inbox happened.
    assert await action_history(stores.actions.db) == []
    assert await observations(stores) == [row.observation]
    await stores.settle(row.id, [ForbidGuestAccess(ROOM, "$a")], now=11)
    assert await stores.actions.count(PENDING) == 1


async def test_a_decision_is_stored_whole(stores: Stores) -> None:
    """Actions, audit, the records it makes and the observation's removal: all or nothing."""
    await stores.inbox.add([joined("@1:example.org", "$a")], 1)
    (row,) = await stores.inbox.take()
    await stores.actions.add([kick("@9:example.org", "$z")], now=1)
    (waiting,) = await stores.actions.due(now=1)
    await stores.actions.retry_at(waiting.id, 60_000, WaitingOn.ROOM, "no power")
    setting = RoomPolicySetting(ROOM, "kick", None, "@alice:example.org", "$p", 5)
    records = (
        setting,
        DryRunSwitch(OTHER, True, "@admin:example.org", 5),
        RoomClassified("!new:example.org", True, 5),
        RoomWoken(ROOM),
    )
    audit = (AuditRecord(5, "guardbot", "decide Kick", ROOM, "@1:example.org", "why", "queued"),)
    unstorable = (RoomClassified("!broken:example.org", object(), 5),)  # type: ignore[arg-type]
    with pytest.raises((sqlite3.Error, asyncpg.DataError)):
        await stores.settle(row.id, [kick()], now=10, audit=audit, records=records + unstorable)
    assert await observations(stores) == [row.observation]
    assert [h["kind"] for h in await action_history(stores.actions.db)] == ["Kick"]
    assert await stores.decisions.settings.room_policies() == {}
    await stores.settle(row.id, [kick()], now=10, audit=audit, records=records)
    assert await stores.inbox.size() == 0
    assert await stores.decisions.settings.room_policies() == {ROOM: setting}
    assert await stores.decisions.settings.dry_runs() == {OTHER: True}
    assert await stores.rooms.known("!new:example.org") is True
    assert {q.id for q in await stores.actions.due(now=10)} >= {waiting.id}  # woken
    assert await stores.decisions.audit.find(room_id=ROOM) == list(audit)
