"""Outages on a Synapse with workers, each judged from the room's timeline: every guest who
came in is removed exactly once, and nobody else is touched.

What workers add: the appservice worker can restart on its own while the client API stays up,
so guardbot sees no outage at all, and what that worker held in memory is gone (the events
queued behind a transaction in flight, element-hq/synapse#11637); a whole restart behind the
reverse proxy answers 502 Bad Gateway (an HTML page, not a Matrix error) instead of refusing
connections. Runs last in the directory: it restarts the session's homeserver (and leaves it
running again).
"""

from __future__ import annotations

import asyncio
import time

from devtools.synapse_workers import WorkerSynapse
from tests.support.harness import bounded, room_ledger
from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.lost_join import joins_behind_a_frozen_guardbot
from tests.support.rooms import listed_room, wait_removed
from tests.support.storm import build_arena, register_guests, storm_until_settled, unique

GUESTS = 10


def worker_synapse(hs: Homeserver) -> WorkerSynapse:
    assert isinstance(hs.synapse, WorkerSynapse)
    return hs.synapse


async def assert_removed_once(hs: Homeserver, room_id: str, guests: set[str]) -> None:
    await asyncio.sleep(3)  # a repeated removal would come after the first: let one show
    book = await room_ledger(hs.admin, room_id, hs.bot_user_id)
    assert not book.stray, book.stray
    assert {u: book.bot_leaves[u] for u in guests} == dict.fromkeys(guests, 1)
    assert book.touched == guests, f"guardbot touched others: {book.touched - guests}"


async def test_guests_who_joined_while_guardbot_was_down_are_each_removed_once(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    hs = workers_hs
    bot = await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")
    arena = await build_arena(hs, rooms=1, members=1)
    room_id = arena.kick_rooms[0]
    guests = await register_guests(arena, GUESTS)
    await bot.stop()

    await bounded((g.join(room_id) for g in guests), 4)
    arena.guests |= {g.user_id for g in guests}
    arena.joined |= arena.guests
    for guest in guests:  # nobody is watching: they are all in
        assert await arena.owner.membership(room_id, guest.user_id) == "join"
    await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")  # the same database
    back = time.monotonic()
    removals = await storm_until_settled(arena, timeout=120)

    assert removals == GUESTS
    print(f"guardbot back: {GUESTS} guests removed within {time.monotonic() - back - 3:.1f}s")


async def test_a_join_while_the_appservice_worker_was_down_is_caught(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    hs, synapse = workers_hs, worker_synapse(workers_hs)
    await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")
    owner = await hs.user(unique("owner"))
    room_id = await listed_room(hs, owner)
    guest = await hs.guest()

    await synapse.stop_worker(WorkerSynapse.APPSERVICE)
    try:
        await guest.join(room_id)  # the client worker and main are up: the join succeeds
    finally:
        await synapse.start_worker(WorkerSynapse.APPSERVICE)
    caught_before = await owner.membership(room_id, guest.user_id) == "leave"
    await wait_removed(owner, room_id, guest.user_id, timeout=60)
    await assert_removed_once(hs, room_id, {guest.user_id})
    print(f"removed {'before' if caught_before else 'after'} the appservice worker was back")


async def test_a_join_lost_in_an_appservice_worker_restart_is_caught(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    """guardbot frozen with a transaction in flight while only the appservice worker restarts:
    the join queued behind it lived in that worker's memory and is never delivered, and the
    client API never went down, so guardbot has no outage to sweep after; only the member
    counts that its directory polls carry can tell that someone came in unseen."""
    hs, synapse = workers_hs, worker_synapse(workers_hs)
    bot = await start_workers_guardbot(POLICY__LISTED_ROOMS="kick", DIRECTORY__POLL_INTERVAL=1)

    async def restart() -> None:  # the appservice worker alone: the client API stays up
        await synapse.stop_worker(WorkerSynapse.APPSERVICE)
        await synapse.start_worker(WorkerSynapse.APPSERVICE)

    joins = await joins_behind_a_frozen_guardbot(hs, bot, restart)
    room_id, first, held, lost = joins.room_id, joins.first, joins.held, joins.lost
    await assert_removed_once(hs, room_id, {first.user_id, held.user_id, lost.user_id})


async def test_whole_homeserver_restart_behind_the_proxy_with_guardbot_running(
    workers_hs: Homeserver, start_workers_guardbot: StartGuardbot
) -> None:
    """Every Synapse process stops while the proxy answers 502 Bad Gateway; a guest who had
    just joined before and one who joins once it is back both end up out, once each."""
    hs, synapse = workers_hs, worker_synapse(workers_hs)
    bot = await start_workers_guardbot(POLICY__LISTED_ROOMS="kick")
    owner = await hs.user(unique("owner"))
    room_id = await listed_room(hs, owner)
    before, after = await hs.guest(), await hs.guest()

    await before.join(room_id)
    await synapse.stop_synapse()  # right away: its transaction may not have gone out yet
    await asyncio.sleep(3)  # long enough for guardbot to meet the 502s
    await synapse.start()
    await after.join(room_id)

    await wait_removed(owner, room_id, before.user_id, timeout=90)
    await wait_removed(owner, room_id, after.user_id, timeout=90)
    await assert_removed_once(hs, room_id, {before.user_id, after.user_id})
    assert bot.proc is not None and bot.proc.poll() is None, "guardbot died in the outage"
