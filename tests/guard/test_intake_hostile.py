"""Intake against input the fault suite's fuzzing found hostile (tests/fault): each case here
failed a whole transaction once, and a refused transaction is resent by the homeserver for
ever, holding back every event after it. Transaction IDs are the homeserver's opaque strings:
any of them is accepted and deduplicated, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.observations import MemberChange
from guardbot.guard.intake import AppserviceAPI, parse_events
from guardbot.matrix.errors import error_middleware
from tests.support.metrics import counted

DOMAIN = "example.org"
BOT = "@guardbot:example.org"
TOKEN = "hs-token-for-tests"


def malformed_so_far() -> float:
    """What guardbot_events_malformed_total says, the count an operator sees."""
    return REGISTRY.get_sample_value("guardbot_events_malformed_total") or 0.0


def guest_join(event_id: str = "$good") -> dict:
    return {
        "type": "m.room.member",
        "room_id": "!r:example.org",
        "event_id": event_id,
        "sender": "@7:example.org",
        "state_key": "@7:example.org",
        "content": {"membership": "join", "kind": "guest"},
    }


def test_a_room_id_of_the_wrong_type_costs_only_its_own_event() -> None:
    broken = [
        guest_join("$list") | {"room_id": []},
        guest_join("$dict") | {"room_id": {"a": 1}},
        {
            "type": "m.room.message",
            "room_id": [1],
            "event_id": "$m",
            "sender": "@a:b",
            "content": {"body": "hello"},
        },
    ]
    before = malformed_so_far()
    observations = parse_events(
        {"events": [*broken, guest_join()]}, DOMAIN, BOT, {"!dm:example.org"}
    )
    assert [o.event_id for o in observations] == ["$good"]
    assert isinstance(observations[0], MemberChange)
    assert (
        malformed_so_far() - before == 2
    )  # the member events; the chat is simply not for guardbot


def test_a_token_that_is_not_utf8_is_refused_not_an_error() -> None:
    """aiohttp hands undecodable header bytes over as lone surrogates; encoding those strictly
    raised, and the homeserver's transaction got a 500 instead of a 403."""
    api = AppserviceAPI("hs-token", DOMAIN, BOT, None, Wakeup(), (), Clock())  # type: ignore[arg-type]
    for token in ("\udc80", "hs-token\udcff", "h\udcc3\udca9"):
        refused = api._refuse(with_auth(f"Bearer {token}"))
        assert refused is not None and refused.status == 403
    assert api._refuse(with_auth("Bearer hs-token")) is None


def with_auth(header: str) -> Any:
    # make_mocked_request encodes its headers, so it cannot carry what aiohttp's parser gives.
    return SimpleNamespace(headers={"Authorization": header}, query={})


def test_many_malformed_events_cost_a_few_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    """A body of junk events (the homeserver sends at most 100, but a broken or hostile one
    may send a whole body of them) once logged a warning per event: millions of lines, and
    minutes with the event loop blocked. The count is kept; the lines are a few."""
    before = malformed_so_far()
    junk = ["x", 0, guest_join("$bad") | {"state_key": 5}] * 2000
    with caplog.at_level(logging.DEBUG, logger="guardbot"):
        observations = parse_events({"events": [*junk, guest_join()]}, DOMAIN, BOT)
    assert [o.event_id for o in observations] == ["$good"]
    assert malformed_so_far() - before == len(junk)
    assert 1 <= len(caplog.records) <= 10
    assert str(len(junk)) in caplog.text  # the summary says how many


def test_identifiers_no_database_can_store_make_their_event_malformed() -> None:
    """A NUL (PostgreSQL refuses it in text) or a lone surrogate (no UTF-8 for it) in an ID
    that becomes a database key failed the transaction with a 500."""
    before = malformed_so_far()
    broken = [
        guest_join("$nul\x00"),
        guest_join("$surrogate\ud800"),
        guest_join("$room") | {"room_id": "!r\x00:example.org"},
        guest_join("$control\x1b[31m"),
    ]
    observations = parse_events({"events": [*broken, guest_join()]}, DOMAIN, BOT)
    assert [o.event_id for o in observations] == ["$good"]
    assert malformed_so_far() - before == len(broken)


def test_parse_events_keeps_the_good_events_around_a_bad_one() -> None:
    bad = guest_join("$bad") | {"content": "join"}
    invited = {"sender": "@999:example.org", "state_key": "@999:example.org"}
    invite = guest_join("$last") | invited | {"content": {"membership": "invite"}}
    chat = {"type": "m.room.message", "room_id": "!r:example.org", "event_id": "$m", "content": {}}
    body = {"events": [guest_join("$first"), bad, "garbage", chat, invite]}
    counted = ("received", "ignored", "malformed")
    before = [REGISTRY.get_sample_value(f"guardbot_events_{c}_total") or 0 for c in counted]
    observations = parse_events(body, DOMAIN, BOT)
    assert [o.event_id for o in observations] == ["$first", "$last"]
    after = [REGISTRY.get_sample_value(f"guardbot_events_{c}_total") or 0 for c in counted]
    assert [b - a for a, b in zip(before, after, strict=True)] == [5, 3, 2]


@pytest.mark.parametrize("txn_id", ["{x}", "}", "\x00", "a\x00b", "\x1b", "é", "a" * 2000])
async def test_any_transaction_id_is_accepted_once(database: db.Database, txn_id: str) -> None:
    """A refusal (404, 500) would make the homeserver resend that transaction for ever, holding
    back every later event (found by the fault suite)."""
    inbox = db.InboxStore(database)
    api = AppserviceAPI(TOKEN, DOMAIN, BOT, inbox, Wakeup(), (), Clock())
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
