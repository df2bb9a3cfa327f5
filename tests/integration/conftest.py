"""A real Synapse on loopback with guardbot registered as its appservice, shared by the session,
and guardbot itself run as a real process (`python -m guardbot`) per test. The pieces behind
them are in tests/support/homeserver.py."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.homeserver import (
    GuardbotProcess,
    Homeserver,
    StartGuardbot,
    running_homeserver,
)


@pytest_asyncio.fixture(scope="session")
async def homeserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    # Open registration lets the tests upgrade a guest to a full account.
    extra = {"enable_registration": True, "enable_registration_without_verification": True}
    async with running_homeserver(tmp_path_factory.mktemp("homeserver"), extra) as hs:
        yield hs


@pytest_asyncio.fixture
async def start_guardbot(
    homeserver: Homeserver, tmp_path: pathlib.Path
) -> AsyncIterator[StartGuardbot]:
    """start_guardbot(POLICY__LISTED_ROOMS="kick", ...) runs guardbot with those config
    overrides (as GUARDBOT_* environment variables) and a database of this test's own."""
    started: list[GuardbotProcess] = []

    async def start(database: str = "", **overrides: object) -> GuardbotProcess:
        env = {
            "GUARDBOT_DATABASE": database or f"sqlite:{tmp_path / 'guardbot.db'}",
            "GUARDBOT_DIRECTORY__POLL_INTERVAL": "1",
            "GUARDBOT_LOGGING__LOGGERS__GUARDBOT__LEVEL": "DEBUG",
        }
        env.update({f"GUARDBOT_{k}": str(v) for k, v in overrides.items()})
        proc = GuardbotProcess(homeserver, tmp_path, env)
        started.append(proc)
        await proc.start()
        return proc

    yield start
    for proc in started:
        await proc.stop()
    for proc in started:  # secrets stay secret, whatever happened in the test
        log = proc.log()
        for secret in (homeserver.as_token, homeserver.hs_token):
            assert secret not in log, "a token reached guardbot's log"
