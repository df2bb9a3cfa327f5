"""guardbot SIGKILLed in the middle of a named guest's reminder, a guest's carry-over and the
management room's report: each is an action on the queue, and after the restart each is done
exactly once. A proxy between guardbot and Synapse holds the one call the test picks, after
Synapse did it (the answer is what the crash loses) or before it reached Synapse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from aiohttp import web

from tests.support.harness import Launch
from tests.support.holding_proxy import HoldingProxy
from tests.support.homeserver import Homeserver
from tests.support.matrix_client import q, wait_for
from tests.support.pwlu_client import Api, as_user, dm_room, nags, pwlu_env, query_db, unique
from tests.support.rooms import listed_room, membership_is, wait_removed

SLOW = {"PWLU__NAG__EVERY": "1h"}  # one reminder in the test's time


@pytest_asyncio.fixture
async def proxies() -> AsyncIterator[Callable[..., HoldingProxy]]:
    made: list[HoldingProxy] = []

    def make(
        hs: Homeserver, matches: Callable[[web.Request, bytes], bool], deliver: bool
    ) -> HoldingProxy:
        proxy = HoldingProxy(hs.synapse.base_url, matches, deliver)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        await proxy.stop()


def sends(txn_prefix: str, saying: bytes = b"") -> Callable[[web.Request, bytes], bool]:
    return lambda r, body: (
        r.method == "PUT" and f"/send/m.room.message/{txn_prefix}" in r.path and saying in body
    )


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "not-delivered"])
async def test_killed_mid_reminder_sends_it_once(
    fault_hs: Homeserver, launch: Launch, proxies: Callable[..., HoldingProxy], delivered: bool
) -> None:
    proxy = proxies(fault_hs, sends("pwlu-nag-"), deliver=delivered)
    url = await proxy.start()
    env = {**pwlu_env(fault_hs, **SLOW), "HOMESERVER__ADDRESS": url}
    bot = await launch(fault_hs, **env)
    registered = await Api(bot.url).register_pwlu(unique("killed"))
    user = as_user(fault_hs, registered)
    await asyncio.wait_for(proxy.held.wait(), timeout=60)
    await bot.kill()

    bot = await launch(fault_hs, **env)  # the same database, through the proxy (now passing)
    room = await dm_room(user, fault_hs.bot_user_id)
    api = Api(bot.url)

    async def counted() -> bool:
        return (await api.status(registered["access_token"]))["nags_sent"] == 1

    await wait_for(counted, what="reminder 1 counted after the restart")
    sent = await nags(user, room, fault_hs.bot_user_id)
    assert [e["content"]["dev.guardbot.pwlu_nag"]["n"] for e in sent] == [1]


async def test_killed_mid_carry_over_finishes_it_once(
    fault_hs: Homeserver, launch: Launch, proxies: Callable[..., HoldingProxy]
) -> None:
    """The new account has joined the first room, the guest has not left it yet: after the
    restart (no tokens kept) guardbot logs in as the named guest and finishes, the guest out
    of every room the named guest is in, and nobody joined twice."""
    owner = await fault_hs.user(unique("owner"))
    rooms = [await owner.create_room(listed=False) for _ in range(2)]
    guest = await fault_hs.guest()
    for room_id in rooms:
        await guest.join(room_id)

    def first_join(r: web.Request, body: bytes) -> bool:
        return r.method == "POST" and r.path.startswith("/_matrix/client/v3/join/")

    proxy = proxies(fault_hs, first_join, deliver=True)
    env = {**pwlu_env(fault_hs, **SLOW), "HOMESERVER__ADDRESS": await proxy.start()}
    bot = await launch(fault_hs, **env)
    username = unique("carried")
    api = Api(bot.url)
    registering = asyncio.create_task(api.register_pwlu(username, guest_access_token=guest.token))
    await asyncio.wait_for(proxy.held.wait(), timeout=60)
    await bot.kill()
    with pytest.raises(Exception):  # noqa: B017  the client sees its request cut off
        await registering
    user_id = f"@{username}:{fault_hs.synapse.server_name}"

    await launch(fault_hs, **env)
    for room_id in rooms:
        await wait_for(
            lambda r=room_id: membership_is(owner, r, user_id, "join"),
            what="the named guest in the guest's room",
        )
        await wait_for(
            lambda r=room_id: membership_is(owner, r, guest.user_id, "leave"),
            what="the guest gone from its room",
        )
        joins = [
            e
            for e in await owner.timeline(room_id)
            if e["type"] == "m.room.member"
            and e.get("state_key") == user_id
            and e["content"].get("membership") == "join"
        ]
        assert len(joins) == 1, joins


async def test_killed_mid_report_posts_it_once(
    fault_hs: Homeserver, launch: Launch, proxies: Callable[..., HoldingProxy]
) -> None:
    admin, bot_id = fault_hs.admin, fault_hs.bot_user_id
    mgmt = await admin.create_room(listed=False, guest_access="forbidden")
    proxy = proxies(fault_hs, sends("guardbot-", saying=b"removed guest"), deliver=True)
    env = {"MANAGEMENT_ROOM": mgmt, "HOMESERVER__ADDRESS": await proxy.start()}
    bot = await launch(fault_hs, **env)
    await admin.invite(mgmt, bot_id)
    await wait_for(lambda: membership_is(admin, mgmt, bot_id, "join"), what="guardbot in mgmt")
    owner = await fault_hs.user(unique("owner"))
    room_id = await listed_room(fault_hs, owner)
    guest = await fault_hs.guest()
    await guest.join(room_id)
    await wait_removed(owner, room_id, guest.user_id)
    await asyncio.wait_for(proxy.held.wait(), timeout=60)  # the report, posted, unanswered
    await bot.kill()

    bot = await launch(fault_hs, **env)

    def report_done() -> bool:
        rows = query_db(bot, "SELECT state FROM action WHERE kind='Notice' AND room_id=?", mgmt)
        return rows == [("done",)]

    async def done() -> bool:
        return report_done()

    await wait_for(done, what="the report's action done after the restart")
    reports = [
        e
        for e in await admin.timeline(mgmt)
        if e["sender"] == bot_id and guest.user_id in e["content"].get("body", "")
    ]
    assert len(reports) == 1, reports


async def test_a_kick_that_landed_before_a_crash_is_recorded_as_done(
    fault_hs: Homeserver, launch: Launch, proxies: Callable[..., HoldingProxy]
) -> None:
    """Before, the restart's re-check saw the guest gone and recorded "skipped: user already
    gone": never repeated, but missing from status, explain and the removal counts."""

    def kick(r: web.Request, body: bytes) -> bool:
        return r.method == "POST" and r.path.endswith("/kick")

    proxy = proxies(fault_hs, kick, deliver=True)
    env = {"HOMESERVER__ADDRESS": await proxy.start()}
    bot = await launch(fault_hs, **env)
    owner = await fault_hs.user(unique("owner"))
    room_id = await listed_room(fault_hs, owner)
    guest = await fault_hs.guest()
    await guest.join(room_id)
    await asyncio.wait_for(proxy.held.wait(), timeout=60)  # kicked; the answer never came
    await bot.kill()
    assert await owner.membership(room_id, guest.user_id) == "leave"

    bot = await launch(fault_hs, **env)

    async def recorded() -> list[tuple[str, str]]:
        sql = "SELECT state, outcome FROM action WHERE kind='Kick' AND user_id=?"
        rows = query_db(bot, sql, guest.user_id)
        return rows if rows and rows[0][0] != "pending" else []

    ((state, outcome),) = await wait_for(recorded, what="the kick's outcome after the restart")
    assert state == "done", outcome
    assert outcome == f"removed guest {guest.user_id} (before a restart)"


@pytest.mark.parametrize("delivered", [True, False], ids=["delivered", "not-delivered"])
async def test_killed_mid_suspension_suspends_and_records_it_once(
    fault_hs: Homeserver, launch: Launch, proxies: Callable[..., HoldingProxy], delivered: bool
) -> None:
    """Expiry's suspension of an idle named guest, cut off by a crash after Synapse suspended
    them (or before the call reached it): after the restart the account is suspended, the
    suspension recorded once, and the step done once."""

    def suspend(r: web.Request, body: bytes) -> bool:
        return r.method == "PUT" and "/_synapse/admin/v1/suspend/" in r.path

    proxy = proxies(fault_hs, suspend, deliver=delivered)
    env = {
        **pwlu_env(fault_hs, PWLU__NAG__FIRST_AFTER="1h"),
        "HOMESERVER__ADDRESS": await proxy.start(),
        "EXPIRY__ENABLED": "true",
        "EXPIRY__GUESTS_IDLE": "1000d",  # the other tests' guests are not this test's business
        "EXPIRY__NAMED_GUESTS_IDLE": "2s",
        "EXPIRY__SUSPENDED_FOR": "1000d",
        "EXPIRY__CHECK_EVERY": "1s",
    }
    bot = await launch(fault_hs, **env)
    registered = await Api(bot.url).register_pwlu(unique("idle"))
    user_id = registered["user_id"]
    await asyncio.wait_for(proxy.held.wait(), timeout=60)
    await bot.kill()

    bot = await launch(fault_hs, **env)

    async def suspended_and_recorded() -> bool:
        info = await fault_hs.admin.request("GET", f"/_synapse/admin/v2/users/{q(user_id)}")
        rows = query_db(bot, "SELECT COUNT(*) FROM suspension WHERE user_id=?", user_id)
        return bool(info["suspended"]) and rows[0][0] == 1

    await wait_for(suspended_and_recorded, what="the suspension done and recorded")
    steps = query_db(bot, "SELECT state FROM action WHERE kind='Suspend' AND user_id=?", user_id)
    assert steps == [("done",)]
