"""The core enforcement scenarios on a Synapse with workers: guests' joins reach the client
worker, guardbot's transactions come from the appservice worker, its kicks and state changes go
through the client worker, directory publication through main. Judged from the rooms' timelines
(the homeserver's own record), as tests/fault does."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from devtools.synapse_workers import WorkerSynapse
from tests.support.harness import room_ledger
from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, User, wait_for
from tests.support.rooms import listed_room, wait_removed
from tests.support.storm import unique

GUESTS_FOR_LATENCY = 5


async def test_guest_joining_listed_kick_room_is_kicked_once(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    hs = workers_hs
    await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")
    owner = await hs.user(unique("owner"))
    member = await hs.user(unique("member"))
    room_id = await listed_room(hs, owner)
    await member.join(room_id)

    guests = [await hs.guest() for _ in range(GUESTS_FOR_LATENCY)]
    latencies = []
    for guest in guests:  # one at a time: each removal is timed on its own
        await guest.join(room_id)
        latencies.append(await wait_removed(owner, room_id, guest.user_id))
    await asyncio.sleep(2)  # a repeated kick would come after the removal: let one show

    event = await owner.member_event(room_id, guests[0].user_id)
    assert event is not None and event["sender"] == hs.bot_user_id  # a kick, not a leave
    assert "Create an account" in event["content"]["reason"]
    book = await room_ledger(hs.admin, room_id, hs.bot_user_id)
    assert {g.user_id: book.bot_leaves[g.user_id] for g in guests} == {g.user_id: 1 for g in guests}
    assert book.touched == {g.user_id for g in guests}, "guardbot touched someone else"
    assert not book.stray
    assert book.final[member.user_id] == "join" and book.final[owner.user_id] == "join"
    assert (await owner.state(room_id, "m.room.guest_access"))["guest_access"] == "can_join"
    ms = [s * 1000 for s in latencies]
    print(f"workers: guest join -> removal median {statistics.median(ms):.0f} ms, {ms}")


async def test_forbid_room_closes_guest_access_and_removes_guest(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    hs = workers_hs
    await start_workers_guardbot(POLICY__LISTED_ROOMS="forbid")
    owner = await hs.user(unique("owner"))
    room_id = await listed_room(hs, owner, listed=False)
    guest = await hs.guest()
    await guest.join(room_id)

    await owner.set_listed(room_id, True)  # served by main only; guardbot polls the directory
    await wait_removed(owner, room_id, guest.user_id, timeout=60)
    await wait_for(
        lambda: _guest_access_is(owner, room_id, "forbidden"), what="guest_access forbidden"
    )
    late = await hs.guest()
    with pytest.raises(MatrixError) as refused:
        await late.join(room_id)
    assert refused.value.status == 403
    book = await room_ledger(hs.admin, room_id, hs.bot_user_id)
    assert book.touched <= {guest.user_id}, "guardbot touched someone else"
    assert ("forbidden" in [value for _, value in book.guest_access]) and not book.stray
    assert book.final[owner.user_id] == "join"


async def test_guest_in_unlisted_room_is_left_alone(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    hs = workers_hs
    await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")
    owner = await hs.user(unique("owner"))
    unlisted = await listed_room(hs, owner, listed=False)
    listed = await listed_room(hs, owner)
    guest = await hs.guest()

    await guest.join(unlisted)
    await guest.join(listed)
    # guardbot handles events in order: once the later join is dealt with, so was the first.
    await wait_removed(owner, listed, guest.user_id)
    assert await owner.membership(unlisted, guest.user_id) == "join"
    assert not (await room_ledger(hs.admin, unlisted, hs.bot_user_id)).touched


async def test_guardbot_ping_reaches_the_appservice_worker(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    """The deployment is wired as the docs say: guardbot's start-up ping went, through the
    proxy, to the worker that sends transactions, and it answered."""
    assert isinstance(workers_hs.synapse, WorkerSynapse)
    log_path = workers_hs.synapse.proxy_log_path
    before = log_path.stat().st_size
    await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")
    with log_path.open() as log:  # only this guardbot's requests
        log.seek(before)
        pings = [line for line in log.read().splitlines() if "/appservice/" in line]
    assert pings and all(" -> appservice 200 " in line for line in pings), pings


async def _guest_access_is(viewer: User, room_id: str, value: str) -> bool:
    content = await viewer.state(room_id, "m.room.guest_access")
    return bool(content) and content.get("guest_access") == value
