"""The named guests' fixtures: guardbot with named guests on (devtools/named_guest_loop.py) on
the test's database and the scripted homeserver, and its HTTP routes served."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from devtools.named_guest_loop import NamedGuestLoop, named_guest_loop
from guardbot import db
from guardbot.matrix.errors import error_middleware
from tests.support.fake_homeserver import FakeHomeserver

SECRET = "s" * 40


@pytest.fixture
async def named(database: db.Database, fake_hs: FakeHomeserver) -> AsyncIterator[NamedGuestLoop]:
    loop = await named_guest_loop(database, fake_hs.url, SECRET, every="1h", template="{link}")
    yield loop
    await loop.guard.hs.close()


@pytest.fixture
async def served(named: NamedGuestLoop) -> AsyncIterator[TestClient]:
    """The named guests' API and claim page, as guardbot serves them."""
    service = named.guard.parts.named_guests
    assert service is not None
    app = web.Application(middlewares=[error_middleware])
    service.add_routes(app)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()
