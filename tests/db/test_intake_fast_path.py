"""A transaction with nothing guardbot cares about is answered without touching the database
(the benchmark's hot path); one with an observation is still stored once and only once."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardbot import db
from guardbot.core.clock import Clock
from guardbot.guard.intake import AppserviceAPI
from guardbot.matrix.errors import error_middleware

from ..support.clock import CountingWakeup
from ..support.metrics import counted

TOKEN = "hs-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHAT = {
    "type": "m.room.message",
    "room_id": "!r:example.org",
    "event_id": "$chat",
    "sender": "@alice:example.org",
    "content": {"msgtype": "m.text", "body": "hello"},
}
GUEST_JOIN = {
    "type": "m.room.member",
    "room_id": "!r:example.org",
    "event_id": "$join",
    "sender": "@7:example.org",
    "state_key": "@7:example.org",
    "content": {"membership": "join", "kind": "guest"},
}


async def test_irrelevant_transactions_skip_the_database(database: db.Database) -> None:
    inbox = db.InboxStore(database)
    woken = CountingWakeup()
    api = AppserviceAPI(TOKEN, "example.org", "@guardbot:example.org", inbox, woken, (), Clock())
    received, repeated = (
        counted("guardbot_events_received"),
        counted("guardbot_transactions_repeated"),
    )
    app = web.Application(middlewares=[error_middleware])
    api.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        chat = json.dumps({"events": [CHAT] * 3})
        for _ in range(2):  # a redelivery of nothing is nothing too
            resp = await client.put("/_matrix/app/v1/transactions/1", data=chat, headers=AUTH)
            assert resp.status == 200 and await resp.json() == {}
        assert await database.fetchval("SELECT COUNT(*) FROM txn") == 0
        assert await inbox.size() == 0 and not woken.count
        assert counted("guardbot_events_received") - received == 6

        mixed = json.dumps({"events": [CHAT, GUEST_JOIN]})
        for _ in range(2):
            resp = await client.put("/_matrix/app/v1/transactions/2", data=mixed, headers=AUTH)
            assert resp.status == 200
        assert await database.fetchval("SELECT COUNT(*) FROM txn") == 1
        assert await inbox.size() == 1 and woken.count == 1
        assert counted("guardbot_transactions_repeated") - repeated == 1
    finally:
        await client.close()
