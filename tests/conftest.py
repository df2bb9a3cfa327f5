"""Shared fixtures. A fresh guardbot database per test: an SQLite file, and PostgreSQL when
GUARDBOT_TEST_POSTGRES holds a server URL (a throwaway database is created on it and dropped)."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from yarl import URL

from guardbot import db

POSTGRES = os.environ.get("GUARDBOT_TEST_POSTGRES")


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgres",
            marks=pytest.mark.skipif(not POSTGRES, reason="GUARDBOT_TEST_POSTGRES is not set"),
        ),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database that exists for this test only."""
    if request.param == "sqlite":
        yield f"sqlite:{tmp_path / 'guardbot.db'}"
        return
    import asyncpg

    assert POSTGRES
    name = "guardbot_test_" + secrets.token_hex(6)
    admin = await asyncpg.connect(POSTGRES)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield str(URL(POSTGRES).with_path("/" + name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[db.Database]:
    """A started guardbot database (migrations applied) on database_url."""
    database = db.create(database_url)
    await database.start()
    try:
        yield database
    finally:
        await database.stop()  # a no-op when the test closed it already to reopen its URL
