"""The database itself (db/__init__.py `create`, the schema steps in db/upgrade/), on every
supported database: what was recorded survives a restart and a killed process, migrations run
once, and an asyncpg internal client error (a connection left in a state asyncpg cannot use, as
a PostgreSQL restart can leave one) fails that one operation; guardbot retries it like any
other database error. mautrix's default was to exit the whole process (sys.exit(26)), so a
routine restart of PostgreSQL sometimes killed guardbot (the fault suite's restart test)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import asyncpg
import pytest

from guardbot import db
from guardbot.core.actions import Kick, WaitingOn
from guardbot.core.observations import PowerChange, RoomListed
from tests.support.stores import ROOM, joined, kick, observations, stores_on


async def test_an_internal_client_error_does_not_exit(database_url: str) -> None:
    if not database_url.startswith("postgres"):
        pytest.skip("asyncpg only")
    database = db.create(database_url)
    await database.start()
    try:
        # What mautrix calls on every failed query before re-raising it.
        await database._handle_exception(  # type: ignore[attr-defined]
            asyncpg.InternalClientError("cannot switch to state 15; another operation (2)")
        )
        assert await database.fetchval("SELECT 1") == 1
    finally:
        await database.stop()


def test_sqlite_gets_no_postgres_arguments(tmp_path: object) -> None:
    database = db.create(f"sqlite:{tmp_path}/x.db")
    assert "meow_exit_on_ice" not in database._db_args  # type: ignore[attr-defined]


async def test_everything_survives_a_restart(database: db.Database, database_url: str) -> None:
    before = stores_on(database)
    body = [joined("@1:example.org", "$a")]
    await before.inbox.record_transaction("7", "h", body, now=1000)
    await before.actions.add([kick("@9:example.org", "$z")], now=1000)
    (queued,) = await before.actions.due(now=1000)
    await before.actions.retry_at(queued.id, 4000, WaitingOn.ROOM, "no power")
    await before.rooms.apply({ROOM}, set(), now=1000)
    await database.stop()

    reopened = db.create(database_url)
    await reopened.start()  # the migrations find the schema already there
    try:
        after = stores_on(reopened)
        assert await after.inbox.record_transaction("7", "h", body, now=2000) is False
        assert await observations(after) == [*body, RoomListed(ROOM, 1000)]
        (kept,) = await after.actions.due(now=4000)
        assert (kept.id, kept.action, kept.attempts) == (queued.id, queued.action, 1)
        assert await after.actions.add([kick("@9:example.org", "$z")], now=5000) == 0
        assert await after.rooms.listed() == {ROOM}
        assert await after.rooms.apply({ROOM}, set(), now=5000) == []
    finally:
        await reopened.stop()


async def test_a_killed_process_loses_nothing_it_recorded(database_url: str) -> None:
    """Another process records, then dies without closing anything."""
    script = textwrap.dedent(
        """
        import asyncio, os, sys
        from guardbot import db
        from guardbot.core.actions import Kick
        from guardbot.core.observations import PowerChange

        async def main():
            database = db.create(sys.argv[1])
            await database.start()
            actions = db.ActionStore(database)
            inbox = db.InboxStore(database)
            await inbox.record_transaction("9", "h", [PowerChange("!r:e.org", "$p")], 1)
            await actions.add([Kick("!r:e.org", "@1:e.org", "no", "$j")], 1)
            os._exit(0)

        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script, database_url], check=True, timeout=60)
    database = db.create(database_url)
    await database.start()
    try:
        after = stores_on(database)
        assert await after.inbox.record_transaction("9", "h", [], now=2) is False
        assert await observations(after) == [PowerChange("!r:e.org", "$p")]
        assert [q.action for q in await after.actions.due(now=2)] == [
            Kick("!r:e.org", "@1:e.org", "no", "$j")
        ]
    finally:
        await database.stop()


async def test_migrations_run_once(database: db.Database, database_url: str) -> None:
    await stores_on(database).actions.add([kick()], now=1)
    await database.stop()
    for _ in range(2):
        again = db.create(database_url)
        await again.start()
        try:
            assert await again.fetchval("SELECT COUNT(*) FROM action") == 1
            latest = len(db.upgrade_table.upgrades)
            assert await again.fetchval("SELECT version FROM version") == latest
        finally:
            await again.stop()


def test_sqlite_url_spellings_name_the_same_file(tmp_path) -> None:
    path = tmp_path / "g.db"
    assert db.create(f"sqlite:///{path}").url == db.create(f"sqlite:{path}").url
