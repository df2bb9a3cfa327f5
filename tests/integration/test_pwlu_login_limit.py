"""Named guests against Synapse's default login limit. The password check before each reminder
used to log in from guardbot's one address, so every named guest's check counted against
rc_login.address (5 at once, then one every ~5 minutes): a new admin's second named guest got
its first reminder 154 s late. With admin rights guardbot checks without logging in."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.homeserver import Homeserver, guardbot_starter, running_homeserver
from tests.support.pwlu_client import Api, as_user, dm_room, pwlu_env, unique, wait_for_nags

# Synapse's defaults (docs: rc_login), which the other tests' homeserver relaxes.
SYNAPSE_DEFAULT = {"per_second": 0.003, "burst_count": 5}
NAMED_GUESTS = 8  # more than the burst: the sixth would have waited minutes


@pytest_asyncio.fixture(scope="module")
async def stock_limits(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    extra = {
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "rc_login": {
            "address": SYNAPSE_DEFAULT,
            "account": SYNAPSE_DEFAULT,
            "failed_attempts": SYNAPSE_DEFAULT,
        },
    }
    async with running_homeserver(tmp_path_factory.mktemp("stock-limits"), extra) as hs:
        yield hs


async def test_many_named_guests_get_their_first_reminder_on_time(
    stock_limits: Homeserver, tmp_path: pathlib.Path
) -> None:
    hs = stock_limits
    async with guardbot_starter(hs, tmp_path) as start:
        proc = await start(**pwlu_env(hs))
        api = Api(proc.url)
        users = [as_user(hs, await api.register_pwlu(unique("many"))) for _ in range(NAMED_GUESTS)]
        for user in users:
            room = await dm_room(user, hs.bot_user_id, timeout=60)
            await wait_for_nags(user, room, hs.bot_user_id, 1, timeout=60)
        assert "429" not in proc.log() and "deferred" not in proc.log(), proc.log()
