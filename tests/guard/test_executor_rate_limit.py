"""M_LIMIT_EXCEEDED is the homeserver's limit on guardbot as a user, not on one request: after
a 429, the other actions of that kind wait too, and the queue goes on one request at a time
until the limit has had time to refill. Before, each action only waited for itself, so every
window ended with all of them sent at once and all but one refused again: for n actions,
about n²/2 refusals (the fault suite's storm saw 21 for 8 rooms to join; here 10 joins got 36,
now 15)."""

from __future__ import annotations

import asyncio
import time

from guardbot import background, db
from guardbot.background import Wakeup
from guardbot.core.actions import JoinRoom
from guardbot.core.clock import Clock
from guardbot.guard.executor import Executor
from guardbot.guard.room_carrier import RoomCarrier
from guardbot.matrix.client import HomeserverError

ROOMS = 10


class LimitedHomeserver:
    """Joins limited like Synapse's rc_joins: a bucket of 2, one more every 0.3 s."""

    bot_user_id = "@guardbot:example.org"

    def __init__(self, burst: int = 2, every_s: float = 0.3) -> None:
        self.burst, self.every_s = burst, every_s
        self.tokens = float(burst)
        self.last = time.monotonic()
        self.answers: list[int] = []

    async def join(self, room_id: str) -> None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) / self.every_s)
        self.last = now
        if self.tokens < 1:
            self.answers.append(429)
            wait_ms = int((1 - self.tokens) * self.every_s * 1000) + 1
            raise HomeserverError(
                429, "M_LIMIT_EXCEEDED", "Too Many Requests", {"retry_after_ms": wait_ms}
            )
        self.tokens -= 1
        self.answers.append(200)


async def test_a_rate_limit_holds_back_the_whole_kind(database: db.Database) -> None:
    store = db.ActionStore(database)
    hs = LimitedHomeserver()
    wakeup, clock = Wakeup(), Clock()
    # Joining needs neither the guests nor the rooms' facts.
    rooms = RoomCarrier(hs=hs, store=store, guests=None, rooms=None, clock=clock)  # type: ignore[arg-type]
    executor = Executor(
        hs=hs,  # type: ignore[arg-type]
        store=store,
        guests=None,  # type: ignore[arg-type]
        clock=clock,
        wakeup=wakeup,
        inbox_wakeup=Wakeup(),
        auto_join=False,
        carriers={JoinRoom: rooms},
    )
    joins = [JoinRoom(f"!room{i}:example.org", cause=f"$invite{i}") for i in range(ROOMS)]
    await store.add(joins, clock.now_ms())
    task = background.start("executor", executor.step, wakeup)
    try:
        deadline = time.monotonic() + 30
        while await store.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert await store.pending() == 0, f"joins still pending; answers {hs.answers}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    refused = hs.answers.count(429)
    assert hs.answers.count(200) == ROOMS
    # The first burst, sent before any 429 came back, is refused whole; after that at most one
    # refusal per join (the probe that finds the bucket empty), not all that are waiting.
    assert refused <= 2 * ROOMS, f"{refused} refusals for {ROOMS} joins: {hs.answers}"
