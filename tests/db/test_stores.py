"""The durable stores, on every supported database: nothing seen twice, nothing lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import dataclass

import asyncpg
import pytest

from guardbot import db
from guardbot.core.actions import ActionState, ForbidGuestAccess, Kick, Outcome, Sweep, WaitingOn
from guardbot.core.decision import (
    AuditRecord,
    Decision,
    DryRunSwitch,
    RoomClassified,
    RoomPolicySetting,
    RoomWoken,
)
from guardbot.core.observations import (
    GuestAccessChange,
    MemberChange,
    MemberFound,
    PowerChange,
    RoomListed,
)
from tests.support.queries import action_history

DONE, PENDING, SKIPPED = ActionState.DONE, ActionState.PENDING, ActionState.SKIPPED

ROOM = "!room:example.org"
OTHER = "!other:example.org"


def joined(user: str, event_id: str, room: str = ROOM) -> MemberChange:
    return MemberChange(room, user, event_id, "join", None, kind_guest=True)


def kick(user: str = "@1:example.org", cause: str = "$j1", room: str = ROOM) -> Kick:
    return Kick(room, user, "no guests", cause)


@dataclass
class Stores:
    decisions: db.DecisionStore

    @property
    def actions(self) -> db.ActionStore:
        return self.decisions.actions

    @property
    def inbox(self) -> db.InboxStore:
        return self.decisions.inbox

    @property
    def rooms(self) -> db.RoomStore:
        return self.decisions.rooms

    async def settle(self, row_id: int, actions: list, now: int, **kw: object) -> None:
        await self.decisions.settle(row_id, Decision(actions=tuple(actions), **kw), now)


def stores_on(database: db.Database) -> Stores:
    return Stores(db.DecisionStore(database))


@pytest.fixture
def stores(database: db.Database) -> Stores:
    return stores_on(database)


async def observations(s: Stores) -> list:
    return [row.observation for row in await s.inbox.take()]


# -- transactions and the inbox ---------------------------------------------------------------
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


# -- the action queue -------------------------------------------------------------------------
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


async def test_only_what_was_really_done_counts_as_done(stores: Stores) -> None:
    for state in (DONE, ActionState.DRY_RUN, SKIPPED, DONE):
        await stores.decisions.audit.add(
            AuditRecord(
                1,
                "guardbot",
                "Kick",
                ROOM,
                "@1:example.org",
                "why",
                f"{state}: x",
                dry_run=state is ActionState.DRY_RUN,
                state=state,
            )
        )
    assert await stores.decisions.audit.count_done("Kick", room_id=ROOM) == 2
    assert await stores.decisions.audit.count_done("Kick", room_id=OTHER) == 0


# -- listed rooms -----------------------------------------------------------------------------
async def test_apply_returns_newly_listed_rooms_and_queues_their_listing(stores: Stores) -> None:
    assert await stores.rooms.apply({ROOM, OTHER}, set(), now=1000) == sorted([ROOM, OTHER])
    assert await stores.rooms.apply({ROOM, OTHER, "!third:e.org"}, set(), 2000) == ["!third:e.org"]
    assert await stores.rooms.listed() == {ROOM, OTHER, "!third:e.org"}
    assert await observations(stores) == [RoomListed(r, 1000) for r in sorted([ROOM, OTHER])] + [
        RoomListed("!third:e.org", 2000)
    ]


async def test_unlisting_and_relisting(stores: Stores) -> None:
    await stores.rooms.apply({ROOM}, set(), now=1000)
    assert await stores.rooms.apply(set(), {ROOM, OTHER}, now=2000) == []
    assert await stores.rooms.listed() == set()
    assert (await stores.rooms.known(ROOM), await stores.rooms.known(OTHER)) == (False, False)
    assert await stores.rooms.known("!never:example.org") is None
    assert await stores.rooms.apply({ROOM}, set(), now=3000) == [ROOM]
    assert await stores.rooms.known(ROOM) is True
    # The re-listing is a new observation, not a duplicate of the first one.
    assert await observations(stores) == [RoomListed(ROOM, 1000), RoomListed(ROOM, 3000)]


# -- restarts ---------------------------------------------------------------------------------
async def test_everything_survives_a_restart(database: db.Database, database_url: str) -> None:
    before = stores_on(database)
    body = [joined("@1:example.org", "$a")]
    await before.inbox.record_transaction("7", "h", body, now=1000)
    await before.actions.add([kick("@9:example.org", "$z")], now=1000)
    (queued,) = await before.actions.due(now=1000)
    await before.actions.retry_at(queued.id, 4000, WaitingOn.ROOM, "no power")
    await before.rooms.apply({ROOM}, set(), now=1000)
    await database.stop()

    reopened = db.create(database_url)
    await reopened.start()  # the migrations find the schema already there
    try:
        after = stores_on(reopened)
        assert await after.inbox.record_transaction("7", "h", body, now=2000) is False
        assert await observations(after) == [*body, RoomListed(ROOM, 1000)]
        (kept,) = await after.actions.due(now=4000)
        assert (kept.id, kept.action, kept.attempts) == (queued.id, queued.action, 1)
        assert await after.actions.add([kick("@9:example.org", "$z")], now=5000) == 0
        assert await after.rooms.listed() == {ROOM}
        assert await after.rooms.apply({ROOM}, set(), now=5000) == []
    finally:
        await reopened.stop()


async def test_a_killed_process_loses_nothing_it_recorded(database_url: str) -> None:
    """Another process records, then dies without closing anything."""
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from guardbot import db
        from guardbot.core.actions import Kick
        from guardbot.core.observations import PowerChange

        async def main():
            database = db.create(sys.argv[1])
            await database.start()
            actions = db.ActionStore(database)
            inbox = db.InboxStore(database)
            await inbox.record_transaction("9", "h", [PowerChange("!r:e.org", "$p")], 1)
            await actions.add([Kick("!r:e.org", "@1:e.org", "no", "$j")], 1)
            os._exit(0)

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script, database_url], check=True, timeout=60)
    database = db.create(database_url)
    await database.start()
    try:
        after = stores_on(database)
        assert await after.inbox.record_transaction("9", "h", [], now=2) is False
        assert await observations(after) == [PowerChange("!r:e.org", "$p")]
        assert [q.action for q in await after.actions.due(now=2)] == [
            Kick("!r:e.org", "@1:e.org", "no", "$j")
        ]
    finally:
        await database.stop()


async def test_migrations_run_once(database: db.Database, database_url: str) -> None:
    await stores_on(database).actions.add([kick()], now=1)
    await database.stop()
    for _ in range(2):
        again = db.create(database_url)
        await again.start()
        try:
            assert await again.fetchval("SELECT COUNT(*) FROM action") == 1
            latest = len(db.upgrade_table.upgrades)
            assert await again.fetchval("SELECT version FROM version") == latest
        finally:
            await again.stop()


def test_sqlite_url_spellings_name_the_same_file(tmp_path) -> None:
    path = tmp_path / "g.db"
    assert db.create(f"sqlite:///{path}").url == db.create(f"sqlite:{path}").url
