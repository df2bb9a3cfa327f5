"""Fixtures of the fault suite: a Synapse of its own (tests that break their homeserver start
another), guardbot as real processes, throwaway PostgreSQL databases, and the secret scan that
every log of the suite goes through. The pieces behind them are in tests/support/."""

from __future__ import annotations

import pathlib
import secrets as random_secrets
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from yarl import URL

from tests.support.harness import (
    OPEN_REGISTRATION,
    SCALE,
    Launch,
    MakeDatabase,
    Secrets,
    remember_secrets,
    scan_synapse_log,
)
from tests.support.homeserver import GuardbotProcess, Homeserver, running_homeserver
from tests.support.postgres import POSTGRES


def pytest_report_header() -> str:
    return f"guardbot fault suite size: {SCALE.name} (GUARDBOT_FAULT_SCALE)"


@pytest.fixture(scope="session")
def secrets() -> Secrets:
    return Secrets()


@pytest_asyncio.fixture(scope="session")
async def fault_hs(
    tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> AsyncIterator[Homeserver]:
    """The suite's own Synapse (open registration: guests get upgraded, PWLU registers), kept
    apart from the integration tests' one so nothing here can disturb them."""
    async with running_homeserver(tmp_path_factory.mktemp("fault-hs"), OPEN_REGISTRATION) as hs:
        remember_secrets(hs, secrets)
        yield hs
        scan_synapse_log(hs, secrets)


@pytest_asyncio.fixture
async def launch(tmp_path: pathlib.Path, secrets: Secrets) -> AsyncIterator[Launch]:
    """launch(hs, database, POLICY__LISTED_ROOMS="kick", ...) runs guardbot against `hs` with
    those GUARDBOT_* overrides. At the end every process is stopped and its log scanned."""
    started: list[GuardbotProcess] = []

    async def start(hs: Homeserver, database: str = "", **overrides: object) -> GuardbotProcess:
        env = {
            "GUARDBOT_DATABASE": database or f"sqlite:{tmp_path / 'guardbot.db'}",
            "GUARDBOT_DIRECTORY__POLL_INTERVAL": "1",
            "GUARDBOT_POLICY__LISTED_ROOMS": "kick",
            # The most talkative level: the scan must see everything guardbot could log.
            "GUARDBOT_LOGGING__LOGGERS__GUARDBOT__LEVEL": "DEBUG",
        }
        env.update({f"GUARDBOT_{k}": str(v) for k, v in overrides.items()})
        proc = GuardbotProcess(hs, tmp_path, env)
        started.append(proc)
        await proc.start(timeout=60)
        return proc

    yield start
    for proc in started:
        await proc.stop()
    for proc in started:
        found = secrets.found_in(proc.log())
        assert not found, f"secrets in guardbot's log {proc.log_path}: {found}"


@pytest_asyncio.fixture
async def make_database(tmp_path: pathlib.Path, secrets: Secrets) -> AsyncIterator[MakeDatabase]:
    """make_database("postgres" | "sqlite") -> a URL of a database for this test only. The
    PostgreSQL URL carries a password (the server trusts loopback and ignores it) so the log
    scan can prove that a database password never reaches a log, outages included."""
    made: list[str] = []

    async def make(kind: str) -> str:
        if kind == "sqlite":
            return f"sqlite:{tmp_path / f'guardbot-{len(made)}.db'}"
        if not POSTGRES:
            pytest.skip("GUARDBOT_TEST_POSTGRES is not set")
        import asyncpg

        name = "guardbot_fault_" + random_secrets.token_hex(6)
        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        made.append(name)
        password = "pgpw-" + random_secrets.token_hex(8)
        secrets.add(password)
        return str(URL(POSTGRES).with_path("/" + name).with_password(password))

    yield make
    if made:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES)
        try:
            for name in made:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
