"""The door (guard/door.py), its HTTP edge: who may ask, what a malformed question gets, and the
bound on every answer, against the scripted homeserver (slowness on cue is a fault no real one
gives) and the real stores. The real Synapse and module are in tests/integration/test_door.py."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devtools.guard_loop import guard_loop
from guardbot import db, metrics
from guardbot.core.clock import Clock
from guardbot.core.policy import Policy
from guardbot.guard.door import Door
from guardbot.matrix.errors import error_middleware
from tests.support.fake_homeserver import FakeHomeserver

TOKEN = "door-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LISTED, UNLISTED = "!listed:example.org", "!unlisted:example.org"
GUEST, MEMBER = "@7:example.org", "@8:example.org"


async def serve(
    database: db.Database, hs: FakeHomeserver, token: str = TOKEN
) -> tuple[TestClient, Door]:
    """The door's routes on a server of their own, guardbot's parts on the scripted
    homeserver, where GUEST is a guest and MEMBER is not."""
    hs.user(GUEST, guest=True)
    hs.user(MEMBER)
    guard = await guard_loop(database, hs.url, listed=[LISTED], policy=Policy.KICK)
    door = Door(
        token=token,
        domain="example.org",
        rooms=guard.rooms,
        inbox=guard.inbox,
        inbox_wakeup=guard.inbox_wakeup,
        guests=guard.guests,
        settings=guard.decisions.settings,
        clock=Clock(),
        timeout=0.2,
        refusal="No guests here: pick a username.",
    )
    app = web.Application(middlewares=[error_middleware])
    door.add_routes(app)
    app.on_cleanup.append(lambda _: guard.hs.close())
    client = TestClient(TestServer(app))
    await client.start_server()
    return client, door


async def ask(
    client: TestClient, callback: str, body: Any, headers: dict = AUTH
) -> tuple[int, dict]:
    resp = await client.post(
        f"/_guardbot/antispam/{callback}", data=json.dumps(body), headers=headers
    )
    return resp.status, await resp.json()


def join(user: str, room: str) -> dict:
    return {"user": user, "room": room, "is_invited": False}


async def test_a_guest_is_refused_and_everyone_else_passes(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    client, _ = await serve(database, fake_hs)
    try:
        status, body = await ask(client, "user_may_join_room", join(GUEST, LISTED))
        assert (status, body) == (
            403,
            {"errcode": "M_FORBIDDEN", "error": "No guests here: pick a username."},
        )
        invite = {"inviter": "@alice:example.org", "invitee": GUEST, "room_id": LISTED}
        assert (await ask(client, "user_may_invite", invite))[0] == 403
        assert await ask(client, "user_may_join_room", join(MEMBER, LISTED)) == (200, {})
        assert await ask(client, "user_may_join_room", join(GUEST, UNLISTED)) == (200, {})
        asked = len(fake_hs.called())
        # Not a numeric local ID, or another server's user: never a guest here, and no I/O.
        for user in ("@alice:example.org", "@7:other.org"):
            assert await ask(client, "user_may_join_room", join(user, LISTED)) == (200, {})
        assert len(fake_hs.called()) == asked
    finally:
        await client.close()


async def test_a_call_with_a_wrong_token_fails_open_not_closed(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    """synapse-http-antispam refuses the join on any JSON error answer and applies fail_open
    only to an answer that is not JSON: a wrong token in homeserver.yaml stopped every join on
    the server. Now it is answered in plain text, counted, and recorded for doctor."""
    client, door = await serve(database, fake_hs)
    refused = metrics.DOOR_TOKEN_REFUSED.labels("wrong")
    before = refused._value.get()
    try:
        assert await ask(client, "ping", {"id": "x"}) == (200, {"id": "x", "status": "ok"})
        for headers in ({}, {"Authorization": "Bearer nope"}):
            resp = await client.post(
                "/_guardbot/antispam/user_may_join_room",
                data=json.dumps(join(MEMBER, LISTED)),
                headers=headers,
            )
            text = await resp.text()
            assert resp.status == 401 and resp.content_type == "text/plain"
            with pytest.raises(ValueError):
                json.loads(text)
            assert "antispam.token" in text and "nope" not in text
        assert refused._value.get() == before + 1
        last = await door.settings.door_last_refused()
        assert last is not None and last[0] == "missing token"  # recorded once per few seconds
        # The admin fixes homeserver.yaml: the next good call is recorded again, after it.
        assert await ask(client, "user_may_join_room", join(MEMBER, LISTED)) == (200, {})
        seen = await door.settings.door_last_seen()
        assert seen is not None and seen[0] == "user_may_join_room" and seen[1] >= last[1]
    finally:
        await client.close()
    # "generate": the door is not set up, and no token opens it.
    client, _ = await serve(database, fake_hs, token="generate")
    try:
        for token in ("generate", ""):
            headers = {"Authorization": f"Bearer {token}"}
            resp = await client.post("/_guardbot/antispam/ping", data="{}", headers=headers)
            assert resp.status == 401
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("raw", "errcode"),
    [
        (b"{", "M_NOT_JSON"),
        (b"[1]", "M_BAD_JSON"),
        (b'{"user": 7, "room": "!r:e"}', "M_BAD_JSON"),
        (b"[" * 100_000, "M_NOT_JSON"),
    ],
)
async def test_a_malformed_question_gets_matrix_error_json(
    database: db.Database, fake_hs: FakeHomeserver, raw: bytes, errcode: str
) -> None:
    client, _ = await serve(database, fake_hs)
    try:
        resp = await client.post("/_guardbot/antispam/user_may_join_room", data=raw, headers=AUTH)
        assert resp.status == 400 and (await resp.json())["errcode"] == errcode
    finally:
        await client.close()


async def test_a_slow_answer_lets_the_join_through(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    client, _ = await serve(database, fake_hs)
    fake_hs.slow("admin_user", 5.0)  # far past the door's 0.2 s
    try:
        assert await ask(client, "user_may_join_room", join(GUEST, LISTED)) == (200, {})
    finally:
        await client.close()


async def test_ping_and_unknown_callbacks_are_answered_and_recorded(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    client, door = await serve(database, fake_hs)
    try:
        assert await ask(client, "ping", {"id": "abc"}) == (200, {"id": "abc", "status": "ok"})
        assert (await door.settings.door_last_seen() or ("",))[0] == "ping"
        # A callback guardbot does not answer is allowed: refusing it would refuse everyone.
        assert await ask(client, "check_event_for_spam", {"event": {}}) == (200, {})
    finally:
        await client.close()


async def test_a_publication_is_looked_for_at_once(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    client, door = await serve(database, fake_hs)
    try:
        body = {"user_id": "@alice:example.org", "room_id": UNLISTED}
        assert await ask(client, "user_may_publish_room", body) == (200, {})
        # Stored for whichever process acts (a standby answers the door too).
        assert [row.observation.room_id for row in await door.inbox.take()] == [UNLISTED]
    finally:
        await client.close()
