"""Events the homeserver itself loses across its own restart. Synapse keeps the events that
arrive while a transaction to an appservice is in flight in memory only, and drops them when it
stops (element-hq/synapse#11637, open). A guest whose join is lost that way must still end up
out of the listed room once the homeserver is back.

Deterministic: Synapse reaches guardbot through a gate here, which holds one transaction in
flight while a second guest joins; then Synapse is stopped and started again.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web

from tests.support.harness import (
    Launch,
    MakeDatabase,
    Secrets,
    backends,
    remember_secrets,
    scan_synapse_log,
)
from tests.support.homeserver import Homeserver, free_port, running_homeserver
from tests.support.lost_join import joins_behind_a_frozen_guardbot
from tests.support.rooms import listed_room, wait_removed
from tests.support.storm import unique


class Gate:
    """Forwards the homeserver's calls to guardbot; closed, it holds a transaction in flight
    (never answered: the homeserver goes down meanwhile) and remembers what passed."""

    def __init__(self) -> None:
        self.port = free_port()
        self.target = ""
        self.open = asyncio.Event()
        self.open.set()
        self.held = asyncio.Event()
        self.passed: list[str] = []  # event IDs forwarded to guardbot
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.open.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if "/transactions/" in request.path:
            if not self.open.is_set():
                self.held.set()
                await self.open.wait()
                return web.json_response({"errcode": "M_UNKNOWN", "error": "gate"}, status=503)
            self.passed += [e.get("event_id") for e in json.loads(body).get("events", [])]
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method, self.target + request.path_qs, data=body, headers=headers
            ) as resp,
        ):
            return web.Response(
                status=resp.status, body=await resp.read(), content_type="application/json"
            )


@pytest_asyncio.fixture
async def gated_hs(
    tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> AsyncIterator[tuple[Homeserver, Gate]]:
    gate = Gate()
    await gate.start()
    root = tmp_path_factory.mktemp("gated-hs")
    url = {"url": f"http://127.0.0.1:{gate.port}"}
    try:
        async with running_homeserver(root, {}, url) as hs:
            gate.target = f"http://127.0.0.1:{hs.guardbot_port}"
            remember_secrets(hs, secrets)
            yield hs, gate
            scan_synapse_log(hs, secrets)
    finally:
        await gate.stop()


async def test_a_join_the_homeserver_lost_in_its_restart_is_still_caught(
    gated_hs: tuple[Homeserver, Gate], launch: Launch, make_database: MakeDatabase
) -> None:
    hs, gate = gated_hs
    await launch(hs, await make_database(backends()[0]))
    owner = await hs.user(unique("owner"))
    room_id = await listed_room(hs, owner)
    first, held, lost = [await hs.guest() for _ in range(3)]
    await first.join(room_id)
    await wait_removed(owner, room_id, first.user_id)

    gate.open.clear()
    await held.join(room_id)  # its transaction is now in flight, held at the gate
    await asyncio.wait_for(gate.held.wait(), 30)
    await lost.join(room_id)  # queued in Synapse's memory behind the one in flight
    await asyncio.sleep(0.5)
    await hs.synapse.stop()
    gate.open.set()
    await asyncio.sleep(3)  # long enough for guardbot to find the homeserver gone
    await hs.synapse.start()

    await wait_removed(owner, room_id, held.user_id, timeout=60)  # resent from Synapse's DB
    await wait_removed(owner, room_id, lost.user_id, timeout=60)
    member = await owner.member_event(room_id, lost.user_id)
    assert member is not None and member["sender"] == hs.bot_user_id
    lost_join = member["unsigned"]["replaces_state"]
    # The premise: the homeserver never delivered that join. If a Synapse release stops
    # dropping such events, this test no longer tests the fix; rework it then.
    assert lost_join not in gate.passed, "Synapse delivered the join after all"


async def test_a_join_lost_while_guardbot_was_frozen_is_caught_by_the_directory_count(
    gated_hs: tuple[Homeserver, Gate], launch: Launch, make_database: MakeDatabase
) -> None:
    """guardbot busy (frozen here) with a transaction in flight while the homeserver restarts
    never sees the homeserver down, so no after-outage sweep runs: only the member count that
    the directory polls carry can tell that someone came in unseen."""
    hs, gate = gated_hs
    bot = await launch(hs, await make_database(backends()[0]), DIRECTORY__POLL_INTERVAL=1)

    async def restart() -> None:
        await hs.synapse.stop()
        await hs.synapse.start()

    joins = await joins_behind_a_frozen_guardbot(hs, bot, restart)
    owner, room_id, lost = joins.owner, joins.room_id, joins.lost
    member = await owner.member_event(room_id, lost.user_id)
    assert member is not None and member["sender"] == hs.bot_user_id
    lost_join = member["unsigned"]["replaces_state"]
    assert lost_join not in gate.passed, "Synapse delivered the join after all"
    # Had a request of guardbot's been in flight at the freeze (a poll: ~1 % of the time), it
    # would have seen the outage and swept anyway; say so rather than pass unknowingly.
    if "The homeserver answers again" in bot.log():
        print("guardbot saw the homeserver down: its after-outage sweep may have done this")
