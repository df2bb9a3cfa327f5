"""The homeserver goes down in the middle of a guest storm (ci: 30 s, full: a minute) and comes
back; it also rate-limits guardbot tightly. guardbot, never restarted, must drain what it owes
once the homeserver is back, removing each guest once, and honour M_LIMIT_EXCEEDED: wait as
told instead of hammering. Counted from the homeserver's side (timelines, and its access log
for the 429s it gave guardbot). How long the drain took is printed, not bounded (a loaded
machine is slower); that what waited goes when the homeserver answers again, not when its
backoff runs out, is tests/guard/test_executor_homeserver_back.py.

What Synapse limits: it never rate-limits an appservice's own sender for events (kicks, state,
messages), whatever the registration says, but with `rate_limited: true` it does limit that
sender's joins (`rc_joins.local`). So the storm invites guardbot into many listed rooms at once
and it has to join them all under a tight join limit while guests pour in.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.harness import (
    SCALE,
    Launch,
    MakeDatabase,
    Secrets,
    backends,
    remember_secrets,
    scan_synapse_log,
)
from tests.support.homeserver import Homeserver, running_homeserver
from tests.support.storm import Arena, let_loose, register_guests, storm_until_settled, unique

# Two joins at once, then one every two seconds, per user (guests each join once or twice).
TIGHT = {"rc_joins": {"local": {"per_second": 0.5, "burst_count": 2}}}
ROOMS = 8
# Synapse's access log: "... - {@guardbot:localhost} Processed request: ... 429 "POST /..."
ACCESS = re.compile(
    r"\{(?P<who>[^}]*)\} Processed request: .* (?P<status>\d{3}) \"(?P<method>[A-Z]+) (?P<path>\S+)"
)
LIMITED_PATH = re.compile(r"/(join|kick|state|send)/")


@pytest_asyncio.fixture
async def limited_hs(
    tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> AsyncIterator[Homeserver]:
    root = tmp_path_factory.mktemp("limited-hs")
    async with running_homeserver(root, TIGHT, {"rate_limited": True}) as hs:
        remember_secrets(hs, secrets)
        yield hs
        scan_synapse_log(hs, secrets)


def bot_requests(hs: Homeserver) -> list[tuple[int, str, str]]:
    """(status, method, path) of every request guardbot made that Synapse rate-limits."""
    found = []
    for line in hs.synapse.log_path.read_text(errors="replace").splitlines():
        m = ACCESS.search(line)
        if m and m["who"].startswith(hs.bot_user_id) and LIMITED_PATH.search(m["path"]):
            found.append((int(m["status"]), m["method"], m["path"]))
    return found


async def crowded_arena(hs: Homeserver) -> Arena:
    """ROOMS listed rooms that invite guardbot all at once; a member in each."""
    owner = await hs.user(unique("owner"))
    rooms = [
        await owner.create_room(listed=True, invite=[hs.bot_user_id], power={hs.bot_user_id: 50})
        for _ in range(ROOMS)
    ]
    arena = Arena(hs, owner, rooms, [await hs.user(unique("member"))])
    arena.patience = SCALE.outage_s + 120  # storm clients keep trying through the outage
    for room_id in rooms:  # the member is join-limited too: retried like a client would
        await arena.retry(lambda r=room_id: arena.members[0].join(r), "member join")
    return arena


async def test_outage_mid_storm_drains_and_rate_limits_are_honoured(
    limited_hs: Homeserver, launch: Launch, make_database: MakeDatabase
) -> None:
    seed = int(os.environ.get("GUARDBOT_FAULT_SEED", random.randrange(1 << 30)))
    print(f"GUARDBOT_FAULT_SEED={seed}")
    rng = random.Random(seed)
    hs = limited_hs
    bot = await launch(hs, await make_database(backends()[0]))
    arena = await crowded_arena(hs)
    guests = await register_guests(arena, SCALE.outage_guests)

    storm = asyncio.create_task(let_loose(arena, guests, rng))
    await asyncio.sleep(rng.uniform(0.5, 2.0))
    await hs.synapse.stop()
    await asyncio.sleep(SCALE.outage_s)
    await hs.synapse.start()
    back = time.monotonic()
    await asyncio.wait_for(storm, arena.patience + 60)
    removals = await storm_until_settled(arena, SCALE.converge_s)
    drained = time.monotonic() - back - 3  # storm_until_settled waits 3 s for repeats

    assert bot.proc is not None and bot.proc.poll() is None, "guardbot died in the outage"
    requests = bot_requests(hs)
    limited = [r for r in requests if r[0] == 429]
    print(
        f"outage {SCALE.outage_s:.0f}s: drained {drained:.1f}s after the homeserver was back; "
        f"{len(arena.joined)} guests, {removals} removals; guardbot made {len(requests)} "
        f"rate-limited requests, {len(limited)} answered 429"
    )
    assert limited, "the homeserver never rate-limited guardbot: the test proves nothing"
    # Honoured: after a 429 the other joins wait too and then go one at a time, so beyond the
    # first burst (sent before any answer came back) each join meets at most one refusal.
    # Each waiting only for itself gave about ROOMS²/2.
    assert len(limited) <= 2 * ROOMS, f"{len(limited)} refusals for {ROOMS} joins"
