"""The appservice transaction endpoint (guard/intake.py) on a real database, without a
homeserver: redelivery, restarts, a broken event beside good ones, and the fast path: a
transaction with nothing guardbot cares about is answered without touching the database (the
benchmark's hot path); one with an observation is still stored once and only once."""

from __future__ import annotations

import json

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardbot import db
from guardbot.core.clock import Clock
from guardbot.core.observations import MemberChange
from guardbot.guard.intake import AppserviceAPI
from guardbot.matrix.errors import error_middleware
from tests.support.clock import CountingWakeup
from tests.support.metrics import counted

TOKEN = "hs-token-for-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


CHAT = {
    "type": "m.room.message",
    "room_id": "!r:example.org",
    "event_id": "$chat",
    "sender": "@alice:example.org",
    "content": {"msgtype": "m.text", "body": "hello"},
}


def guest_join(n: int) -> dict:
    return {
        "type": "m.room.member",
        "room_id": "!room",
        "event_id": f"$join{n}",
        "sender": f"@{n}:example.org",
        "state_key": f"@{n}:example.org",
        "content": {"membership": "join", "kind": "guest"},
    }


async def serve(database: db.Database) -> tuple[TestClient, AppserviceAPI, CountingWakeup]:
    inbox = db.InboxStore(database)
    woken = CountingWakeup()
    api = AppserviceAPI(TOKEN, "example.org", "@guardbot:example.org", inbox, woken, (), Clock())
    app = web.Application(middlewares=[error_middleware], client_max_size=1 << 20)
    api.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, api, woken


async def inbox_users(database: db.Database) -> list[str]:
    rows = await db.InboxStore(database).take(1000)
    return [r.observation.user_id for r in rows if isinstance(r.observation, MemberChange)]


async def test_broken_event_does_not_cost_the_others(database: db.Database) -> None:
    client, api, woken = await serve(database)
    malformed = counted("guardbot_events_malformed")
    try:
        events = [guest_join(1), {"type": "m.room.member", "content": "nope"}, 7, guest_join(2)]
        resp = await client.put(
            "/_matrix/app/v1/transactions/1", json={"events": events}, headers=AUTH
        )
        assert resp.status == 200
        assert await inbox_users(database) == ["@1:example.org", "@2:example.org"]
        assert counted("guardbot_events_malformed") - malformed == 2
        assert woken.count
    finally:
        await client.close()


async def test_redelivery_adds_nothing_even_after_a_restart(
    database_url: str, database: db.Database
) -> None:
    body = json.dumps({"events": [guest_join(1)]})
    client, _, _ = await serve(database)
    try:
        for _ in range(2):
            resp = await client.put("/_matrix/app/v1/transactions/5", data=body, headers=AUTH)
            assert resp.status == 200
    finally:
        await client.close()
    await database.stop()

    reopened = db.create(database_url)
    await reopened.start()
    try:
        client, api, _ = await serve(reopened)
        repeated = counted("guardbot_transactions_repeated")
        try:
            resp = await client.put("/_matrix/app/v1/transactions/5", data=body, headers=AUTH)
            assert resp.status == 200
            assert counted("guardbot_transactions_repeated") - repeated == 1
            # The same ID with a different body is a new transaction (the homeserver's
            # database was reset and its IDs restarted), not a redelivery.
            other = json.dumps({"events": [guest_join(2)]})
            resp = await client.put("/_matrix/app/v1/transactions/5", data=other, headers=AUTH)
            assert resp.status == 200
        finally:
            await client.close()
        assert await inbox_users(reopened) == ["@1:example.org", "@2:example.org"]
    finally:
        await reopened.stop()


async def test_errors_are_matrix_json(database: db.Database) -> None:
    client, _, _ = await serve(database)
    try:
        resp = await client.get("/_matrix/app/v1/nothing-here")
        assert resp.status == 404
        assert (await resp.json())["errcode"] == "M_UNRECOGNIZED"
        resp = await client.post("/_matrix/app/v1/transactions/1", headers=AUTH)
        assert resp.status == 405
        assert "errcode" in await resp.json()
        resp = await client.post("/_matrix/app/v1/ping", json={}, headers=AUTH)
        assert resp.status == 200
        resp = await client.post("/_matrix/app/v1/ping", json={})
        assert resp.status == 401
    finally:
        await client.close()


async def test_irrelevant_transactions_skip_the_database(database: db.Database) -> None:
    client, api, woken = await serve(database)
    received, repeated = (
        counted("guardbot_events_received"),
        counted("guardbot_transactions_repeated"),
    )
    try:
        chat = json.dumps({"events": [CHAT] * 3})
        for _ in range(2):  # a redelivery of nothing is nothing too
            resp = await client.put("/_matrix/app/v1/transactions/1", data=chat, headers=AUTH)
            assert resp.status == 200 and await resp.json() == {}
        assert await database.fetchval("SELECT COUNT(*) FROM txn") == 0
        assert await api.inbox.size() == 0 and not woken.count
        assert counted("guardbot_events_received") - received == 6

        mixed = json.dumps({"events": [CHAT, guest_join(7)]})
        for _ in range(2):
            resp = await client.put("/_matrix/app/v1/transactions/2", data=mixed, headers=AUTH)
            assert resp.status == 200
        assert await database.fetchval("SELECT COUNT(*) FROM txn") == 1
        assert await api.inbox.size() == 1 and woken.count == 1
        assert counted("guardbot_transactions_repeated") - repeated == 1
    finally:
        await client.close()
