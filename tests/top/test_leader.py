"""Leadership (guardbot/leader.py) on the real databases: a leader renews its lease and stops
before it can run out, a standby takes over, a leader cut off from the database waits, the
stage decides the HTTP gate and readiness, and an observation is decided once even when two
processes settle it. The lease's SQL is in tests/db/test_lease_store.py."""

from __future__ import annotations

import asyncio

from guardbot import db
from guardbot.core.actions import Kick
from guardbot.core.clock import Clock
from guardbot.core.decision import AuditRecord, Decision
from guardbot.core.observations import HomeserverBack
from guardbot.db.lease_store import LeaseStore
from guardbot.leader import Leadership, Stage
from tests.support.clock import FakeClock


def candidate(store: LeaseStore, clock: Clock, lease: float) -> tuple[Leadership, list[str]]:
    """A process asking for the lease, and the list of why it was told it lost it."""
    lost: list[str] = []
    return Leadership(store, clock, lease=lease, alone=False, on_lost=lost.append), lost


async def lease_was_free() -> None:
    raise AssertionError("the lease was free: nobody should have had to wait")


async def test_an_observation_is_decided_once(database: db.Database) -> None:
    decisions = db.DecisionStore(database)
    await decisions.inbox.add([HomeserverBack(1)], 1)
    (row,) = await decisions.inbox.take()
    why = AuditRecord(2, "guardbot", "decide Kick", "!r:x", "@1:x", "a guest", "queued")
    kick = Decision(actions=(Kick("!r:x", "@1:x", "e", "guest"),), audit=(why,))
    first, second = await asyncio.gather(
        decisions.settle(row.id, kick, 2), decisions.settle(row.id, kick, 2)
    )
    assert sorted([first, second], key=str) == [1, None]
    assert await decisions.actions.pending() == 1
    assert len(await decisions.audit.find()) == 1  # the loser stored nothing


async def test_a_leader_stops_before_its_lease_can_run_out(database: db.Database) -> None:
    clock = FakeClock()
    leadership, lost = candidate(LeaseStore(database), clock, lease=5)
    assert leadership.may_act()  # starting: guardbot makes sure of its own user first
    await leadership.elect(while_waiting=lease_was_free)
    assert leadership.leading and leadership.term == 1
    clock.advance(3.9)
    assert leadership.may_act()
    clock.advance(0.2)  # 4.1 s of 5 since the lease was asked for: past its own deadline
    assert not leadership.leading and not leadership.may_act()
    assert not lost  # in doubt, not lost: nobody took over (yet)


class FlakyLease(LeaseStore):
    """The real store, but its renewals fail while `down` (the database away)."""

    down = False

    async def renew(self, term: int, lease_ms: int) -> bool:
        if self.down:
            raise ConnectionError("the database is away")
        return await super().renew(term, lease_ms)


async def test_a_leader_cut_off_from_the_database_waits_then_leads_on(
    database: db.Database,
) -> None:
    store = FlakyLease(database)
    leadership, lost = candidate(store, Clock(), lease=1)
    await leadership.elect(while_waiting=lease_was_free)
    holding = asyncio.create_task(leadership.hold())
    store.down = True
    await asyncio.sleep(1.2)  # past its deadline (0.8 s): holds back
    assert not leadership.may_act() and not lost and not holding.done()
    store.down = False  # back, and nobody took over: the same term leads on
    for _ in range(50):
        if leadership.may_act():
            break
        await asyncio.sleep(0.05)
    assert leadership.may_act() and leadership.term == 1 and not lost
    holding.cancel()


async def test_a_leader_whose_term_was_taken_over_loses_at_its_next_renewal(
    database: db.Database,
) -> None:
    store = LeaseStore(database)
    leadership, lost = candidate(store, Clock(), lease=1)
    await leadership.elect(while_waiting=lease_was_free)
    assert await store.acquire("usurper", 60_000, force=True) == 2
    await asyncio.wait_for(leadership.hold(), timeout=10)
    assert lost == ["another process took over from term 1"]
    assert not leadership.leading


async def test_a_standby_waits_and_then_takes_over(database: db.Database) -> None:
    store = LeaseStore(database)
    assert await store.acquire("the leader", 500) == 1
    waited = 0

    async def refresh() -> None:
        nonlocal waited
        waited += 1

    standby, _ = candidate(store, Clock(), lease=1)
    await asyncio.wait_for(standby.elect(while_waiting=refresh), timeout=10)
    assert standby.term == 2 and waited >= 1


async def test_a_leader_that_stalled_confirms_at_once_and_one_taken_over_does_not(
    database: db.Database,
) -> None:
    clock = FakeClock()
    store = LeaseStore(database)
    leadership, lost = candidate(store, clock, lease=60)
    await leadership.elect(while_waiting=lease_was_free)
    clock.advance(50)  # its loop did not run for 50 s: unsure, though nobody took over
    assert not leadership.leading
    assert await leadership.confirm()  # renewed on the spot: the same term leads on
    assert leadership.term == 1 and not lost
    clock.advance(50)
    assert await store.acquire("usurper", 60_000, force=True) == 2
    assert not await leadership.confirm()
    assert lost == ["another process took over from term 1"]


async def test_the_stage_decides_the_gate_the_readiness_and_writes(database: db.Database) -> None:
    """One typed stage: a standby neither writes nor lets the leader's traffic in; a leader
    lets it in once opened, says ready once every loop runs, and goes back to taking over
    when a take-over step fails."""
    store = LeaseStore(database)
    first = Leadership(store, Clock(), lease=5, alone=False, holder="first")
    second = Leadership(store, Clock(), lease=5, alone=False, holder="second")
    tries: list[Stage] = []

    async def take_over() -> None:
        tries.append(first.stage)
        first.opened()
        assert await first.acting() and not await first.ready()  # traffic in, loops starting
        if len(tries) == 1:
            raise RuntimeError("the homeserver did not answer the ping")

    running = asyncio.create_task(first.run(take_over, while_waiting=lease_was_free))
    for _ in range(200):
        if first.stage is Stage.READY:
            break
        await asyncio.sleep(0.05)
    # The failed try closed the gate again before the next (backed off by a second).
    assert tries == [Stage.TAKING_OVER, Stage.TAKING_OVER]
    assert await first.ready() and first.may_act()

    waited = asyncio.Event()

    async def refreshing() -> None:
        waited.set()

    standing_by = asyncio.create_task(second.elect(while_waiting=refreshing))
    await asyncio.wait_for(waited.wait(), timeout=10)
    assert second.stage is Stage.STANDBY and not second.may_act()
    assert not await second.acting() and not await second.ready()
    standing_by.cancel()

    running.cancel()
    await asyncio.gather(running, standing_by, return_exceptions=True)
    await first.release()
    assert first.stage is Stage.STOPPING and not first.may_act()
