"""A real Synapse on loopback with guardbot registered as its appservice, shared by the session,
and guardbot itself run as a real process (`python -m guardbot`) per test. The pieces behind
them are in tests/support/homeserver.py."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.homeserver import (
    Homeserver,
    StartGuardbot,
    guardbot_starter,
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
    """start_guardbot(POLICY__LISTED_ROOMS="kick", ...): guardbot against the session's Synapse."""
    async with guardbot_starter(homeserver, tmp_path) as start:
        yield start


@pytest_asyncio.fixture(scope="session")
async def door_homeserver(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    """A Synapse that asks guardbot at the door (synapse-http-antispam, as the README says)."""
    extra = {"enable_registration": True, "enable_registration_without_verification": True}
    async with running_homeserver(tmp_path_factory.mktemp("door-hs"), extra, door=True) as hs:
        yield hs


@pytest_asyncio.fixture
async def start_door_guardbot(
    door_homeserver: Homeserver, tmp_path: pathlib.Path
) -> AsyncIterator[StartGuardbot]:
    async with guardbot_starter(door_homeserver, tmp_path) as start:
        yield start
