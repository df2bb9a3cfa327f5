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
from tests.support.matrix_client import q
from tests.support.pwlu_client import (
    Api,
    as_user,
    claim_token,
    dm_room,
    login,
    name_someone_elses_account,
    pwlu_env,
    query_db,
    submit_claim,
    unique,
    wait_for_nags,
)

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
        # Not "429" alone: a log line's milliseconds may read ",429".
        assert "M_LIMIT_EXCEEDED" not in proc.log() and "deferred" not in proc.log(), proc.log()


async def test_strangers_naming_accounts_cost_them_no_login_and_starve_no_claim(
    stock_limits: Homeserver, tmp_path: pathlib.Path
) -> None:
    """The first, unauthenticated step of the named-guest API stored a row, kept on the
    homeserver's "in use", which guardbot later settled by logging in with the derived
    password: a stranger could make Synapse count failed logins on any account, and use up
    guardbot's own login allowance so a real named guest's claim got "try again in 270 s".
    Here guardbot is not a server admin, so its claim page logs in from its one address."""
    hs = stock_limits
    bot_admin = f"/_synapse/admin/v2/users/{q(hs.bot_user_id)}"
    await hs.admin.request("PUT", bot_admin, {"admin": False})
    try:
        async with guardbot_starter(hs, tmp_path) as start:
            proc = await start(**pwlu_env(hs, PWLU__NAG__EVERY="1h"))
            api = Api(proc.url)
            plain = await hs.user(unique("plain"))
            name = plain.user_id[1:].split(":")[0]
            await name_someone_elses_account(api, name, rounds=6)
            assert query_db(proc, "SELECT user_id FROM pwlu") == []  # nothing to settle later

            # A real named guest claims their account: guardbot's logins were not spent.
            user = as_user(hs, await api.register_pwlu(unique("real")))
            room = await dm_room(user, hs.bot_user_id, timeout=60)
            (nag,) = await wait_for_nags(user, room, hs.bot_user_id, 1, timeout=60)
            link = f"{proc.url}/_guardbot/claim/{claim_token(nag)}"
            status, page = await submit_claim(link, "a long and new passphrase")
            assert status == 200 and "Password set" in page, page
            assert await login(hs, user.user_id, "a long and new passphrase") == 200

        assert await login(hs, plain.user_id, "pw-" + name) == 200  # not locked out
        synapse_log = hs.synapse.log_path.read_text(errors="replace")
        assert f"Failed password login for user {plain.user_id}" not in synapse_log
    finally:
        await hs.admin.request("PUT", bot_admin, {"admin": True})
