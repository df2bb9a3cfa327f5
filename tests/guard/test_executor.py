"""Retry and backoff against a homeserver that says no. A fake homeserver here, because a real
one cannot be made to rate-limit or fail on cue; the database is real."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from devtools.guard_loop import guard_loop
from guardbot import background, db
from guardbot.core.actions import Kick, WaitingOn
from guardbot.core.clock import Clock
from guardbot.guard.executor import Executor
from guardbot.matrix.client import Homeserver, HomeserverError
from tests.support.queries import action_history

ROOM, GUEST, BOT = "!room:example.org", "@7:example.org", "@guardbot:example.org"


class FakeHomeserver:
    """Answers just what a kick needs; the kick endpoint fails as scripted, then succeeds."""

    def __init__(self, kick_failures: list[tuple[int, dict | str]]) -> None:
        self.kick_failures = list(kick_failures)
        self.kicks: list[float] = []
        app = web.Application()
        app.router.add_get(
            "/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}", self.member
        )
        app.router.add_get("/_synapse/admin/v2/users/{user}", self.user)
        app.router.add_post("/_matrix/client/v3/rooms/{room}/kick", self.kick)
        self.server = TestServer(app)

    async def member(self, request: web.Request) -> web.Response:
        content = {"membership": "leave" if self.kicks else "join", "kind": "guest"}
        if request.query.get("format") == "event":  # the whole event, as the kick asks
            return web.json_response({"content": content, "sender": GUEST})
        return web.json_response(content)

    async def user(self, _: web.Request) -> web.Response:
        return web.json_response({"name": GUEST, "is_guest": True, "admin": False})

    async def kick(self, _: web.Request) -> web.Response:
        if self.kick_failures:
            status, body = self.kick_failures.pop(0)
            if isinstance(body, str):  # a proxy's own error page
                return web.Response(status=status, text=body, content_type="text/html")
            return web.json_response(body, status=status)
        self.kicks.append(asyncio.get_running_loop().time())
        return web.json_response({})


async def run_kick(database: db.Database, fake: FakeHomeserver) -> tuple[Executor, db.ActionStore]:
    await fake.server.start_server()
    guard = await guard_loop(database, str(fake.server.make_url("")), listed=[ROOM])
    await guard.actions.add([Kick(ROOM, GUEST, "reason", cause="$join")], now_ms())
    return guard.executor, guard.actions


def now_ms() -> int:
    return Clock().now_ms()


async def test_rate_limit_waits_as_told_then_kicks_once(database: db.Database) -> None:
    fake = FakeHomeserver(
        [(429, {"errcode": "M_LIMIT_EXCEEDED", "error": "slow", "retry_after_ms": 1500})]
    )
    executor, store = await run_kick(database, fake)
    try:
        started = now_ms()
        assert await executor.run_once() == 1
        [row] = await action_history(store.db)
        assert row["state"] == "pending" and "rate-limited" in row["outcome"]
        assert await store.next_due_at() >= started + 1500
        assert await executor.run_once() == 0  # not before its time

        runner = background.start("executor", executor.step, executor.wakeup)
        try:
            for _ in range(100):  # until the kick is recorded done, not only sent
                [row] = await action_history(store.db)
                if row["state"] != "pending":
                    break
                await asyncio.sleep(0.05)
        finally:
            runner.cancel()
        assert len(fake.kicks) == 1
        assert row["state"] == "done"
        assert now_ms() - started >= 1500
    finally:
        await executor.hs.close()
        await fake.server.close()


async def test_homeserver_errors_back_off_and_power_is_explained(database: db.Database) -> None:
    fake = FakeHomeserver(
        [
            (502, {}),
            (403, {"errcode": "M_FORBIDDEN", "error": "You don't have permission to kick"}),
        ]
    )
    executor, store = await run_kick(database, fake)
    try:
        await executor.run_once()
        [row] = await action_history(store.db)
        assert row["attempts"] == 1 and "homeserver trouble" in row["outcome"]
        assert row["waiting_on"] == WaitingOn.HOMESERVER
        await database.execute("UPDATE action SET next_attempt_at=0")
        await executor.run_once()
        [row] = await action_history(store.db)
        assert row["attempts"] == 2
        assert "lacks power" in row["outcome"] and "@guardbot:example.org" in row["outcome"]
        assert row["waiting_on"] == WaitingOn.ROOM
        assert await store.next_due_at() > now_ms() + 3000  # backoff grew
        assert not fake.kicks
    finally:
        await executor.hs.close()
        await fake.server.close()


async def test_a_proxy_error_page_is_one_line_and_retried(database: db.Database) -> None:
    """A reverse proxy whose Synapse is down answers 502 with an HTML page: the kick waits for
    the homeserver, and what guardbot logs and records is one line, not the page."""
    page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body></body>\r\n</html>"
    fake = FakeHomeserver([(502, page)])
    executor, actions = await run_kick(database, fake)
    try:
        await executor.run_once()
        (row,) = await action_history(actions.db)
        assert (row["state"], row["waiting_on"], row["attempts"]) == ("pending", "homeserver", 1)
        assert "\n" not in row["outcome"] and "<html>" not in row["outcome"]
        assert "502" in row["outcome"] and "proxy" in row["outcome"]
    finally:
        await fake.server.close()


UNKNOWN_TOKEN = {"errcode": "M_UNKNOWN_TOKEN", "error": "Unrecognised access token"}


async def test_a_stale_token_waits_and_says_so(database: db.Database, caplog) -> None:
    """Synapse restarted with a registration from `-g --new-tokens` while guardbot ran on the
    old tokens: its 401 M_UNKNOWN_TOKEN dropped sweeps "for good" and read as lost admin
    rights. Now the work waits, and the log names the cause."""
    fake = FakeHomeserver([(401, UNKNOWN_TOKEN)])
    executor, store = await run_kick(database, fake)
    try:
        await executor.run_once()
        (row,) = await action_history(store.db)
        assert (row["state"], row["waiting_on"]) == ("pending", WaitingOn.HOMESERVER)
        assert "another registration for guardbot" in row["outcome"]
        assert "another registration for guardbot" in caplog.text
        assert "restart guardbot" in caplog.text.lower()

        # The rights are unknown, not lost: the admin check raises instead of answering no.
        guests = executor.guests
        guests.set_admin(True)
        fake_admin = web.Application()
        fake_admin.router.add_get(
            "/{tail:.*}", lambda _: web.json_response(UNKNOWN_TOKEN, status=401)
        )
        server = TestServer(fake_admin)
        await server.start_server()
        stale = Homeserver(str(server.make_url("")), "old-token", BOT)
        try:
            guests.hs, kept = stale, guests.hs
            with pytest.raises(HomeserverError) as caught:
                await guests.check_admin()
            assert caught.value.stale_token and caught.value.transient
            assert guests.admin
        finally:
            guests.hs = kept
            await stale.close()
            await server.close()

        # Once guardbot runs with the tokens the homeserver knows, the kick goes, once.
        await database.execute("UPDATE action SET next_attempt_at=0")
        await executor.run_once()
        (row,) = await action_history(store.db)
        assert row["state"] == "done" and len(fake.kicks) == 1
    finally:
        await executor.hs.close()
        await fake.server.close()
