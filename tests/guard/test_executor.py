"""The executor (guard/executor.py): retry and backoff against a homeserver that says no. The
scripted homeserver here (tests/support/fake_homeserver.py), because a real one cannot be
made to rate-limit or fail on cue; the database is real."""

from __future__ import annotations

import asyncio

import pytest

from devtools.guard_loop import guard_loop
from guardbot import background, db
from guardbot.core.actions import Kick, WaitingOn
from guardbot.core.clock import Clock
from guardbot.guard.executor import Executor
from guardbot.matrix.client import HomeserverError
from tests.support.fake_homeserver import Answer, FakeHomeserver, error
from tests.support.queries import action_history

ROOM, GUEST, BOT = "!room:example.org", "@7:example.org", "@guardbot:example.org"


async def run_kick(database: db.Database, hs: FakeHomeserver) -> tuple[Executor, db.ActionStore]:
    """A guest in a listed room, and guardbot's decision to kick them queued."""
    hs.user(GUEST, guest=True)
    hs.room(ROOM).member(GUEST, kind="guest")
    guard = await guard_loop(database, hs.url, listed=[ROOM])
    await guard.actions.add([Kick(ROOM, GUEST, "reason", cause="$join")], now_ms())
    return guard.executor, guard.actions


def now_ms() -> int:
    return Clock().now_ms()


async def test_rate_limit_waits_as_told_then_kicks_once(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    fake_hs.script("kick", error(429, "M_LIMIT_EXCEEDED", "slow", retry_after_ms=1500))
    executor, store = await run_kick(database, fake_hs)
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
        assert [c.status for c in fake_hs.called("kick")] == [429, 200]
        assert row["state"] == "done"
        assert fake_hs.room(ROOM).membership(GUEST) == "leave"
        assert now_ms() - started >= 1500
    finally:
        await executor.hs.close()


async def test_homeserver_errors_back_off_and_power_is_explained(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    fake_hs.script(
        "kick",
        Answer(502),
        error(403, "M_FORBIDDEN", "You don't have permission to kick"),
    )
    executor, store = await run_kick(database, fake_hs)
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
        assert fake_hs.room(ROOM).membership(GUEST) == "join"
    finally:
        await executor.hs.close()


async def test_a_proxy_error_page_is_one_line_and_retried(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    """A reverse proxy whose Synapse is down answers 502 with an HTML page: the kick waits for
    the homeserver, and what guardbot logs and records is one line, not the page."""
    page = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body></body>\r\n</html>"
    fake_hs.script("kick", Answer(502, page))
    executor, actions = await run_kick(database, fake_hs)
    try:
        await executor.run_once()
        (row,) = await action_history(actions.db)
        assert (row["state"], row["waiting_on"], row["attempts"]) == ("pending", "homeserver", 1)
        assert "\n" not in row["outcome"] and "<html>" not in row["outcome"]
        assert "502" in row["outcome"] and "proxy" in row["outcome"]
    finally:
        await executor.hs.close()


UNKNOWN_TOKEN = error(401, "M_UNKNOWN_TOKEN", "Unrecognised access token")


async def test_a_stale_token_waits_and_says_so(
    database: db.Database, fake_hs: FakeHomeserver, caplog: pytest.LogCaptureFixture
) -> None:
    """Synapse restarted with a registration from `-g --new-tokens` while guardbot ran on the
    old tokens: its 401 M_UNKNOWN_TOKEN dropped sweeps "for good" and read as lost admin
    rights. Now the work waits, and the log names the cause."""
    fake_hs.script("kick", UNKNOWN_TOKEN)
    executor, store = await run_kick(database, fake_hs)
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
        fake_hs.script("is_admin", UNKNOWN_TOKEN)
        with pytest.raises(HomeserverError) as caught:
            await guests.check_admin()
        assert caught.value.stale_token and caught.value.transient
        assert guests.admin

        # Once guardbot runs with the tokens the homeserver knows, the kick goes, once.
        await database.execute("UPDATE action SET next_attempt_at=0")
        await executor.run_once()
        (row,) = await action_history(store.db)
        assert row["state"] == "done"
        assert [c.status for c in fake_hs.called("kick")] == [401, 200]
    finally:
        await executor.hs.close()
