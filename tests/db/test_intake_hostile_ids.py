"""Transaction IDs are the homeserver's opaque strings: any of them is accepted and
deduplicated, on SQLite and PostgreSQL. A refusal (404, 500) would make the homeserver resend
that transaction for ever, holding back every later event (found by the fault suite)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.guard.intake import AppserviceAPI
from guardbot.matrix.errors import error_middleware

from ..support.metrics import counted

TOKEN = "hs-token-for-tests"


def guest_join(event_id: str) -> dict:
    return {
        "type": "m.room.member",
        "room_id": "!r:example.org",
        "event_id": event_id,
        "sender": "@7:example.org",
        "state_key": "@7:example.org",
        "content": {"membership": "join", "kind": "guest"},
    }


@pytest.mark.parametrize("txn_id", ["{x}", "}", "\x00", "a\x00b", "\x1b", "é", "a" * 2000])
async def test_any_transaction_id_is_accepted_once(database: db.Database, txn_id: str) -> None:
    inbox = db.InboxStore(database)
    api = AppserviceAPI(TOKEN, "example.org", "@guardbot:example.org", inbox, Wakeup(), (), Clock())
    repeated = counted("guardbot_transactions_repeated")
    app = web.Application(middlewares=[error_middleware])
    api.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        path = "/_matrix/app/v1/transactions/" + quote(txn_id, safe="")
        body = json.dumps({"events": [guest_join("$one")]})
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(2):  # and its redelivery
            resp = await client.put(path, data=body, headers=auth)
            assert resp.status == 200, await resp.text()
        assert await inbox.size() == 1
        assert counted("guardbot_transactions_repeated") - repeated == 1
        # An unprintable ID is kept escaped; a printable one that looks the same is another
        # transaction, and the body hash tells them apart anyway.
        lookalike = txn_id.encode("unicode_escape").decode("ascii")
        if lookalike != txn_id:
            other = json.dumps({"events": [guest_join("$two")]})
            path = "/_matrix/app/v1/transactions/" + quote(lookalike, safe="")
            assert (await client.put(path, data=other, headers=auth)).status == 200
            assert await inbox.size() == 2
    finally:
        await client.close()
