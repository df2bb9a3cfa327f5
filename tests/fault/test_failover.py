"""An active/standby pair of guardbot processes on one PostgreSQL database, behind nginx as the
README's example configures it (docker/nginx-guardbot-pair.conf), against a real Synapse.

The leader is SIGKILLed in the middle of guest storms, again and again, and each time the
standby takes over and the dead one comes back as the new standby. A leader whose database
connections are cut is taken over from, and exits when it learns it. Afterwards, from the rooms'
timelines: every guest out, each removed once per arrival, no one else touched. A frozen
leader (SIGSTOP, as a machine that stops answering) is taken over from and, woken, exits
before it does anything more. Each failover is measured (printed; the goal is in bench 7).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from devtools.nginx_pair import nginx, nginx_pair
from tests.support.harness import SCALE, MakeDatabase, Secrets, remember_secrets, settle
from tests.support.homeserver import GuardbotProcess, Homeserver, free_port, running_homeserver
from tests.support.postgres import POSTGRES
from tests.support.rooms import listed_room, wait_removed
from tests.support.storm import build_arena, guest_wave, storm_until_settled, unique
from tests.support.tcp_link import Link

pytestmark = [
    pytest.mark.skipif(not POSTGRES, reason="a pair needs PostgreSQL"),
    pytest.mark.skipif(nginx() is None, reason="nginx is not installed (Debian: nginx-light)"),
]


@contextlib.asynccontextmanager
async def pair(
    hs: Homeserver, workdir: Path, database: str, secrets: Secrets, poll_interval: str = "1"
) -> AsyncIterator[list[GuardbotProcess]]:
    """Two guardbots on `database`, on ports of their own, behind nginx where the homeserver
    sends (appservice.address). Stopped, and their logs scanned, at the end."""
    env = {
        "GUARDBOT_DATABASE": database,
        "GUARDBOT_DIRECTORY__POLL_INTERVAL": poll_interval,
        "GUARDBOT_POLICY__LISTED_ROOMS": "kick",
        "GUARDBOT_LOGGING__LOGGERS__GUARDBOT__LEVEL": "DEBUG",
    }
    ports = [free_port(), free_port()]
    bots = [GuardbotProcess(hs, workdir, env, port=port) for port in ports]
    with nginx_pair(workdir, hs.guardbot_port, ports):
        try:
            yield bots
        finally:
            for bot in bots:
                if bot.proc is not None and bot.proc.poll() is None:
                    os.kill(bot.proc.pid, signal.SIGCONT)  # a test that failed while one froze
                await bot.stop()
        for bot in bots:
            found = secrets.found_in(bot.log())
            assert not found, f"secrets in guardbot's log {bot.log_path}: {found}"


async def exit_code(bot: GuardbotProcess, timeout: float = 30) -> int | None:
    """How the process ended, once it has (None: still running after `timeout`)."""
    assert bot.proc is not None
    for _ in range(int(timeout / 0.05)):
        if bot.proc.poll() is not None:
            break
        await asyncio.sleep(0.05)
    return bot.proc.poll()


async def wait_ready(bot: GuardbotProcess, timeout: float = 60) -> None:
    async def standing_by() -> list[str]:
        return [] if await bot.is_ready() else [f"{bot.url} is not ready"]

    await settle(standing_by, timeout=timeout, what="the standby taking over", every=0.05)


async def test_the_standby_answers_only_what_reads(
    fault_hs: Homeserver, make_database: MakeDatabase, secrets: Secrets, tmp_path: Path
) -> None:
    async with pair(fault_hs, tmp_path, await make_database("postgres"), secrets) as bots:
        leader, standby = bots
        await leader.start(timeout=60)
        await standby.start(timeout=60, standby=True)
        auth = {"Authorization": f"Bearer {fault_hs.hs_token}"}
        async with aiohttp.ClientSession() as session:
            async with session.get(standby.url + "/_matrix/mau/ready") as resp:
                assert resp.status == 503
            body = {"events": [{"type": "m.room.message", "room_id": "!r:x", "event_id": "$e"}]}
            url = standby.url + "/_matrix/app/v1/transactions/standby-1"
            async with session.put(url, json=body, headers=auth) as resp:
                assert resp.status == 503
                answer = await resp.json()
                assert answer["errcode"] == "M_UNKNOWN" and "standby" in answer["error"]
            async with session.get(leader.url + "/_matrix/mau/ready") as resp:
                assert resp.status == 200
            # The door reads only: the standby answers it, from the rooms the leader listed.
            owner = await fault_hs.user(unique("owner"))
            room_id = await listed_room(fault_hs, owner)
            guest = await fault_hs.guest()
            door = standby.url + "/_guardbot/antispam/user_may_join_room"
            token = {"Authorization": f"Bearer {fault_hs.antispam_token}"}

            async def answer(user: str) -> int:
                question = {"user": user, "room": room_id, "is_invited": False}
                async with session.post(door, json=question, headers=token) as resp:
                    return resp.status

            async def guest_let_in() -> list[str]:
                return [] if await answer(guest.user_id) == 403 else ["the guest was let in"]

            await settle(guest_let_in, timeout=30, what="the standby's door refusing a guest")
            assert await answer(owner.user_id) == 200
        assert "Standby: " in standby.log() and "leads (term" in standby.log()


@pytest.mark.integration  # starts a Synapse of its own, with the door module
async def test_a_publication_the_standby_hears_is_acted_on_at_once(
    tmp_path_factory: pytest.TempPathFactory,
    make_database: MakeDatabase,
    secrets: Secrets,
    tmp_path: Path,
) -> None:
    """Synapse asks the door through nginx, which sends about every other call to the standby.
    Before, a publication the standby heard stayed in its memory, and the room's guests stayed
    until the leader's next poll (here ten minutes away)."""
    root = tmp_path_factory.mktemp("door-pair-hs")
    async with running_homeserver(root, {}, door=True) as hs:
        remember_secrets(hs, secrets)
        database = await make_database("postgres")
        async with pair(hs, tmp_path, database, secrets, poll_interval="600") as bots:
            leader, standby = bots
            await leader.start(timeout=60)
            await standby.start(timeout=60, standby=True)
            owner = await hs.user(unique("publisher"))
            rooms = [await listed_room(hs, owner, listed=False) for _ in range(6)]
            guests = []
            for room_id in rooms:
                guest = await hs.guest()
                await guest.join(room_id)
                guests.append(guest)
            for room_id in rooms:
                path = f"/_matrix/client/v3/directory/list/room/{room_id}"
                await owner.request("PUT", path, {"visibility": "public"})
            for room_id, guest in zip(rooms, guests, strict=True):
                await wait_removed(owner, room_id, guest.user_id, timeout=60)
        assert "The door heard that" in standby.log(), "no publication reached the standby"


async def test_sigkill_the_leader_mid_storm(
    fault_hs: Homeserver, make_database: MakeDatabase, secrets: Secrets, tmp_path: Path
) -> None:
    seed = int(os.environ.get("GUARDBOT_FAULT_SEED", random.randrange(1 << 30)))
    print(f"GUARDBOT_FAULT_SEED={seed}")
    rng = random.Random(seed)
    async with pair(fault_hs, tmp_path, await make_database("postgres"), secrets) as bots:
        await bots[0].start(timeout=60)
        await bots[1].start(timeout=60, standby=True)
        arena = await build_arena(fault_hs)
        failovers: list[float] = []
        leader, standby = bots

        async def strike(within: float) -> None:
            nonlocal leader, standby
            await asyncio.sleep(rng.uniform(0.05, within))
            killed = time.monotonic()
            await leader.kill()
            await wait_ready(standby)
            failovers.append(time.monotonic() - killed)
            await leader.start(timeout=60, standby=True)  # back, as the standby now
            leader, standby = standby, leader

        for trial in range(SCALE.crash_trials):
            within = max(1.0, SCALE.guests_per_trial / 12)
            wave = guest_wave(arena, SCALE.guests_per_trial, rng)
            await asyncio.wait_for(asyncio.gather(wave, strike(within)), 300)
            print(f"trial {trial + 1}: failover {failovers[-1]:.1f}s")
        removals = await storm_until_settled(arena, SCALE.converge_s)
        print(
            f"{len(failovers)} leaders SIGKILLed, failovers "
            f"{', '.join(f'{f:.1f}s' for f in failovers)}; {len(arena.joined)} guests, "
            f"{removals} removals"
        )
        assert len(failovers) == SCALE.crash_trials


async def test_a_frozen_leader_is_taken_over_and_exits_when_it_wakes(
    fault_hs: Homeserver, make_database: MakeDatabase, secrets: Secrets, tmp_path: Path
) -> None:
    rng = random.Random(7)
    async with pair(fault_hs, tmp_path, await make_database("postgres"), secrets) as bots:
        leader, standby = bots
        await leader.start(timeout=60)
        await standby.start(timeout=60, standby=True)
        arena = await build_arena(fault_hs, rooms=2)
        assert leader.proc is not None
        os.kill(leader.proc.pid, signal.SIGSTOP)
        frozen = time.monotonic()

        # Guests arrive while the leader is frozen: the homeserver's transaction to it hangs
        # until nginx gives up (proxy_read_timeout) and tries the standby, which took over.
        async def takeover() -> float:
            await wait_ready(standby)
            return time.monotonic() - frozen

        _, took = await asyncio.gather(guest_wave(arena, 8, rng), takeover())
        print(f"taken over {took:.1f}s after the freeze")
        os.kill(leader.proc.pid, signal.SIGCONT)
        assert await exit_code(leader) == 3, leader.log()[-2000:]
        assert "No longer the leader" in leader.log()
        await storm_until_settled(arena, SCALE.converge_s)


async def test_a_leader_cut_off_from_the_database_is_taken_over_and_exits(
    fault_hs: Homeserver, make_database: MakeDatabase, secrets: Secrets, tmp_path: Path
) -> None:
    """The leader's link to the database is cut: it stops acting, the standby takes over, and
    the old leader, its link back, finds the new term and exits without acting again."""
    database = URL(await make_database("postgres"))
    link = Link(database.port or 5432)
    await link.start()
    rng = random.Random(11)
    try:
        async with pair(fault_hs, tmp_path, str(database), secrets) as bots:
            leader, standby = bots
            leader.env["GUARDBOT_DATABASE"] = str(database.with_port(link.port))
            await leader.start(timeout=60)
            await standby.start(timeout=60, standby=True)
            arena = await build_arena(fault_hs, rooms=2)
            assert leader.proc is not None
            link.cut()
            cut_at = time.monotonic()
            await asyncio.gather(guest_wave(arena, 8, rng), wait_ready(standby))
            print(f"taken over {time.monotonic() - cut_at:.1f}s after the cut")
            assert leader.proc.poll() is None  # unsure, not dead: it only stopped acting
            link.up = True  # back: it renews, finds another term, and exits
            assert await exit_code(leader) == 3, leader.log()[-2000:]
            assert "another process took over from term 1" in leader.log()
            await storm_until_settled(arena, SCALE.converge_s)
    finally:
        await link.close()
