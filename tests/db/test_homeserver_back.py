"""When the homeserver answers again after an outage, what waited for it goes at once. Before,
each action slept out its own exponential backoff (up to 5 minutes) and the evaluator its own
(up to a minute): after a one-minute outage the fault suite saw the backlog drain 65 s after
the homeserver was back, guests sitting in listed rooms all that time."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from aiohttp import web

from guardbot import db
from guardbot.core import policy
from guardbot.core.clock import now_ms
from guardbot.guard.executor import Executor
from guardbot.matrix.client import Homeserver


class Settings:
    bot_user_id = "@guardbot:example.org"

    def __getitem__(self, key: str) -> Any:
        return {"bot.auto_join_listed_rooms": False}[key]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_actions_waiting_for_an_unreachable_homeserver_go_when_it_answers(
    database: db.Database,
) -> None:
    port = free_port()
    joined: list[float] = []

    async def join(_: web.Request) -> web.Response:
        joined.append(time.monotonic())
        return web.json_response({"room_id": "!r:example.org"})

    async def versions(_: web.Request) -> web.Response:
        return web.json_response({"versions": ["v1.11"]})

    app = web.Application()
    app.router.add_post("/_matrix/client/v3/join/{room}", join)
    app.router.add_get("/_matrix/client/versions", versions)
    runner = web.AppRunner(app)
    await runner.setup()

    hs = Homeserver(f"http://127.0.0.1:{port}", "as-token", Settings.bot_user_id)
    store = db.ActionStore(database)
    wakeup = asyncio.Event()

    async def facts(room_id: str) -> Any:
        return None

    executor = Executor(Settings(), hs, store, None, facts, wakeup)  # type: ignore[arg-type]
    hs.on_back.append(executor.homeserver_back)
    # What the app queues after an outage: a sweep of each listed room, for lost events.
    executor.after_outage = lambda now: [policy.Sweep("!listed:example.org", f"back {now}")]
    await store.add([policy.JoinRoom("!r:example.org", cause="$invite")], now_ms())
    # As after a long outage: the next backoff is 2 s * 2**5 = 64 s.
    await database.execute("UPDATE action SET attempts = 5")
    task = asyncio.create_task(executor.run())
    try:
        for _ in range(100):  # the attempt that finds the homeserver down
            if await store.count("pending") and not await store.due(now_ms()):
                break
            await asyncio.sleep(0.05)
        assert hs.unreachable and not joined
        await web.TCPSite(runner, "127.0.0.1", port).start()
        back = time.monotonic()
        await hs.versions()  # any request that works, e.g. the directory poll
        deadline = time.monotonic() + 10
        while not joined and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert joined, "the join still waits out its backoff"
        assert joined[0] - back < 3
        kinds = [(a["kind"], a["room_id"]) for a in await store.history()]
        assert ("Sweep", "!listed:example.org") in kinds
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await hs.close()
        await runner.cleanup()
