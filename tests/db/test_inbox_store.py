"""The inbox (db/inbox_store.py), on every supported database: transactions recorded once,
observations kept in arrival order, nothing seen twice."""

from __future__ import annotations

from guardbot.core.actions import ActionState
from guardbot.core.observations import (
    GuestAccessChange,
    PowerChange,
    RoomListed,
)
from tests.support.stores import OTHER, ROOM, Stores, joined, observations

DONE, PENDING, SKIPPED = ActionState.DONE, ActionState.PENDING, ActionState.SKIPPED


async def test_redelivered_transaction_adds_nothing(stores: Stores) -> None:
    body = [joined("@1:example.org", "$a"), PowerChange(ROOM, "$p")]
    assert await stores.inbox.record_transaction("7", "hash-1", body, now=1000) is True
    assert await stores.inbox.record_transaction("7", "hash-1", body, now=2000) is False
    assert await observations(stores) == body
    # Still a redelivery after the first copy has been handled and left the inbox.
    for row in await stores.inbox.take():
        await stores.settle(row.id, [], now=3000)
    assert await stores.inbox.record_transaction("7", "hash-1", body, now=4000) is False
    assert await stores.inbox.size() == 0


async def test_reused_transaction_id_with_new_body_is_new(stores: Stores) -> None:
    """A homeserver whose database was reset starts its transaction IDs at 1 again."""
    assert await stores.inbox.record_transaction("1", "old", [joined("@1:e.org", "$a")], 1000)
    fresh = [joined("@2:example.org", "$b")]
    assert await stores.inbox.record_transaction("1", "new", fresh, now=2000) is True
    assert [o.event_id for o in await observations(stores)] == ["$a", "$b"]
    assert await stores.inbox.record_transaction("1", "new", fresh, now=3000) is False
    assert await stores.inbox.size() == 2


async def test_same_event_in_two_transactions_is_kept_once(stores: Stores) -> None:
    event = joined("@1:example.org", "$a")
    await stores.inbox.record_transaction("1", "h1", [event], now=1000)
    await stores.inbox.record_transaction("2", "h2", [event, PowerChange(ROOM, "$p")], now=2000)
    assert await observations(stores) == [event, PowerChange(ROOM, "$p")]


async def test_pruned_transaction_ids_are_forgotten(stores: Stores) -> None:
    await stores.inbox.record_transaction("old", "h", [], now=1000)
    await stores.inbox.record_transaction("new", "h", [], now=5000)
    await stores.inbox.prune_transactions(before=3000)
    assert await stores.inbox.record_transaction("old", "h", [], now=6000) is True
    assert await stores.inbox.record_transaction("new", "h", [], now=6000) is False


async def test_take_returns_observations_in_arrival_order(stores: Stores) -> None:
    first = [GuestAccessChange(ROOM, "$g", "@alice:example.org", None)]
    second = [joined("@3:example.org", "$c"), RoomListed(OTHER, 42)]
    await stores.inbox.record_transaction("1", "h1", first, now=1)
    await stores.inbox.record_transaction("2", "h2", second, now=2)
    assert await observations(stores) == first + second
    assert [r.observation for r in await stores.inbox.take(limit=2)] == first + second[:1]
