"""An asyncpg internal client error (a connection left in a state asyncpg cannot use, as a
PostgreSQL restart can leave one) fails that one operation; guardbot retries it like any
other database error. mautrix's default was to exit the whole process (sys.exit(26)), so a
routine restart of PostgreSQL sometimes killed guardbot (the fault suite's restart test)."""

from __future__ import annotations

import asyncpg
import pytest

from guardbot import db


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
