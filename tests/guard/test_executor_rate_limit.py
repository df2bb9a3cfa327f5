"""The executor (guard/executor.py) and M_LIMIT_EXCEEDED, which is the homeserver's limit on
guardbot as a user, not on one request: after a 429, the other actions of that kind wait too, and
the queue goes on one request at a time until the limit has had time to refill. Before, each action
only waited for itself, so every window ended with all of them sent at once and all but one refused
again: for n actions, about n²/2 refusals (the fault suite's storm saw 21 for 8 rooms to join; here
10 joins got 36, now 15)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from devtools.guard_loop import GuardLoop
from guardbot import background
from guardbot.core.actions import JoinRoom
from guardbot.core.clock import Clock
from tests.support.fake_homeserver import FakeHomeserver

ROOMS = 10


async def test_a_rate_limit_holds_back_the_whole_kind(
    fake_hs: FakeHomeserver, guard_on_fake: Callable[..., Awaitable[GuardLoop]]
) -> None:
    fake_hs.rate_limit("join", burst=2, every_s=0.3)  # like Synapse's rc_joins
    guard = await guard_on_fake()
    store, executor = guard.actions, guard.executor
    joins = [JoinRoom(f"!room{i}:example.org", cause=f"$invite{i}") for i in range(ROOMS)]
    await store.add(joins, Clock().now_ms())
    task = background.start("executor", executor.step, guard.queue_wakeup)
    answers: list[int] = []
    try:
        deadline = time.monotonic() + 30  # a guard against a hang, not a measurement
        while await store.pending() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        answers = [c.status for c in fake_hs.called("join")]
        assert await store.pending() == 0, f"joins still pending; answers {answers}"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    refused = answers.count(429)
    assert answers.count(200) == ROOMS
    # The first burst, sent before any 429 came back, is refused whole; after that at most one
    # refusal per join (the probe that finds the bucket empty), not all that are waiting.
    assert refused <= 2 * ROOMS, f"{refused} refusals for {ROOMS} joins: {answers}"
