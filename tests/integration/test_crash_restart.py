"""guardbot killed (SIGKILL) in the middle of a stream of guest joins: after a restart every
guest is out, each removed exactly once, and nobody else was touched. Counted from the
homeserver's side: the room's timeline."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import wait_for
from tests.support.rooms import listed_room

GUESTS = 24


async def test_restart_mid_stream_neither_misses_nor_repeats(
    homeserver: Homeserver, start_guardbot: StartGuardbot, database_url: str
) -> None:
    bot = await start_guardbot(database_url, POLICY__LISTED_ROOMS="kick")
    tag = database_url.split(":")[0]
    alice = await homeserver.user(f"alice_crash_{tag}")
    bob = await homeserver.user(f"bob_crash_{tag}")
    room_id = await listed_room(homeserver, alice)
    guests = [await homeserver.guest() for _ in range(GUESTS)]
    rng = random.Random(7)
    crash_after = rng.randrange(4, GUESTS // 2)

    for i, guest in enumerate(guests):
        await guest.join(room_id)
        if i == crash_after:
            await bob.join(room_id)
            await asyncio.sleep(rng.random() * 0.05)
            await bot.kill()
        elif i == crash_after + 5:
            await bot.start()  # same database: it must pick up where it died

    async def all_out() -> bool:
        return all([await alice.membership(room_id, g.user_id) == "leave" for g in guests])

    await wait_for(all_out, timeout=60, what="every guest removed after the restart")
    timeline = await alice.timeline(room_id)
    kicks = Counter(
        e["state_key"]
        for e in timeline
        if e["type"] == "m.room.member"
        and e["content"].get("membership") == "leave"
        and e["sender"] == homeserver.bot_user_id
    )
    assert kicks == Counter({g.user_id: 1 for g in guests})
    touched = {e["state_key"] for e in timeline if e["sender"] == homeserver.bot_user_id}
    assert bob.user_id not in touched and alice.user_id not in touched
    assert await alice.membership(room_id, bob.user_id) == "join"
