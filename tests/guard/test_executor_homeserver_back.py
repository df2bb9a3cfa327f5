"""When the homeserver answers again after an outage, what waited for it goes at once, and
every listed room is swept for the events it may have lost. Before, each action slept out its
own exponential backoff (up to 5 minutes) and the evaluator its own (up to a minute): after a
one-minute outage the fault suite saw the backlog drain 65 s after the homeserver was back,
guests sitting in listed rooms all that time."""

from __future__ import annotations

import asyncio
import socket

from aiohttp import web

from devtools.guard_loop import guard_loop
from guardbot import background, db
from guardbot.core.actions import ActionState, JoinRoom
from guardbot.core.clock import Clock
from tests.support.queries import action_history

LISTED = "!listed:example.org"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_actions_waiting_for_an_unreachable_homeserver_go_when_it_answers(
    database: db.Database,
) -> None:
    port = free_port()
    clock = Clock()
    joined = asyncio.Event()
    joined_at: list[int] = []  # when each join reached the homeserver, ms

    async def join(_: web.Request) -> web.Response:
        joined_at.append(clock.now_ms())
        joined.set()
        return web.json_response({"room_id": "!r:example.org"})

    async def versions(_: web.Request) -> web.Response:
        return web.json_response({"versions": ["v1.11"]})

    async def members(_: web.Request) -> web.Response:
        return web.json_response({"chunk": []})

    app = web.Application()
    app.router.add_post("/_matrix/client/v3/join/{room}", join)
    app.router.add_get("/_matrix/client/versions", versions)
    app.router.add_get("/_matrix/client/v3/rooms/{room}/members", members)
    runner = web.AppRunner(app)
    await runner.setup()

    guard = await guard_loop(database, f"http://127.0.0.1:{port}", listed=[LISTED], clock=clock)
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
        assert guard.hs.unreachable and not joined_at
        backoff_ends = await store.next_due_at()
        assert backoff_ends is not None and backoff_ends > clock.now_ms() + 120_000
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await guard.hs.versions()  # any request that works, e.g. the directory poll
        # Its backoff has minutes to run: a join now went because the homeserver answered.
        await asyncio.wait_for(joined.wait(), timeout=60)
        assert joined_at[0] < backoff_ends
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
        await runner.cleanup()
