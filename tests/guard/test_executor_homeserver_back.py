"""The executor (guard/executor.py) and the evaluator when the homeserver answers again after an
outage, what waited for it goes at once, and every listed room is swept for the events it may have
lost. Before, each action slept out its own exponential backoff (up to 5 minutes) and the evaluator
its own (up to a minute): after a one-minute outage the fault suite saw the backlog drain 65 s after
the homeserver was back, guests sitting in listed rooms all that time."""

from __future__ import annotations

import asyncio

from devtools.guard_loop import guard_loop
from guardbot import background, db
from guardbot.core.actions import ActionState, JoinRoom
from guardbot.core.clock import Clock
from tests.support.fake_homeserver import FakeHomeserver
from tests.support.homeserver import free_port
from tests.support.queries import action_history

LISTED = "!listed:example.org"


async def test_actions_waiting_for_an_unreachable_homeserver_go_when_it_answers(
    database: db.Database,
) -> None:
    hs = FakeHomeserver(port=free_port())  # not started yet: unreachable
    hs.room(LISTED)
    clock = Clock()
    guard = await guard_loop(database, hs.url, listed=[LISTED], clock=clock)
    store = guard.actions
    await store.add([JoinRoom("!r:example.org", cause="$invite")], clock.now_ms())
    # As after a long outage: the next backoff is the longest there is (minutes).
    await database.execute("UPDATE action SET attempts = 20")
    tasks = [
        background.start("executor", guard.executor.step, guard.queue_wakeup, max_backoff=5),
        background.start("evaluator", guard.evaluator.step, guard.inbox_wakeup),
    ]
    try:
        for _ in range(100):  # the attempt that finds the homeserver down
            if await store.count(ActionState.PENDING) and not await store.due(clock.now_ms()):
                break
            await asyncio.sleep(0.05)
        assert guard.hs.unreachable and not hs.called()
        backoff_ends = await store.next_due_at()
        assert backoff_ends is not None and backoff_ends > clock.now_ms() + 120_000
        await hs.start()
        await guard.hs.versions()  # any request that works, e.g. the directory poll
        # Its backoff has minutes to run: a join now went because the homeserver answered.
        for _ in range(200):
            if hs.called("join"):
                break
            await asyncio.sleep(0.05)
        assert clock.now_ms() < backoff_ends
        assert hs.room("!r:example.org").membership(hs.bot_user_id) == "join"
        for _ in range(200):  # the sweep after the outage, decided from its observation
            kinds = [(a["kind"], a["room_id"], a["state"]) for a in await action_history(store.db)]
            if ("Sweep", LISTED, "done") in kinds:
                break
            await asyncio.sleep(0.05)
        assert ("Sweep", LISTED, "done") in kinds
        audit = await guard.decisions.audit.find(room_id=LISTED)
        assert [e.what for e in audit] == ["decide Sweep", "Sweep"]
        assert "outage" in audit[0].why
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await guard.hs.close()
        await hs.close()
