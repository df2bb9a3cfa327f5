"""PostgreSQL restarted (`pg_ctlcluster ... restart`; ci twice, full 4 times) in the middle of a
guest storm: guardbot, never restarted itself, reconnects and loses nothing. Every guest is
removed once, nobody else is touched (counted from the rooms' timelines). Transactions that
arrive while the database is away are refused with a 5xx on purpose: the homeserver keeps them
and sends them again.

This restarts the PostgreSQL server everyone on this machine shares, so it is short, and it is
skipped when the server is not a local cluster this user may restart.
"""

from __future__ import annotations

import asyncio
import os
import random

import pytest

from tests.support import postgres
from tests.support.harness import SCALE, Launch, MakeDatabase
from tests.support.homeserver import Homeserver
from tests.support.postgres import POSTGRES
from tests.support.storm import build_arena, let_loose, register_guests, storm_until_settled


def local_cluster() -> tuple[str, str]:
    """(version, name) of the local cluster serving GUARDBOT_TEST_POSTGRES, or skip."""
    found = postgres.local_cluster(POSTGRES)
    if isinstance(found, str):
        pytest.skip(found)
    return found


def restart(version: str, name: str) -> float:
    try:
        return postgres.restart_cluster(version, name)
    except RuntimeError as e:
        pytest.skip(str(e))


async def test_postgres_restart_mid_storm_loses_nothing(
    fault_hs: Homeserver, launch: Launch, make_database: MakeDatabase
) -> None:
    cluster = local_cluster()
    seed = int(os.environ.get("GUARDBOT_FAULT_SEED", random.randrange(1 << 30)))
    print(f"GUARDBOT_FAULT_SEED={seed}")
    rng = random.Random(seed)
    bot = await launch(fault_hs, await make_database("postgres"))
    arena = await build_arena(fault_hs, rooms=2, members=1)
    guests = await register_guests(arena, SCALE.pg_guests)

    storm = asyncio.create_task(let_loose(arena, guests, rng, upgrades=1))
    took = []
    for _ in range(SCALE.pg_restarts):  # each one can leave connections in another state
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        took.append(await asyncio.to_thread(restart, *cluster))
    await asyncio.wait_for(storm, arena.patience + 60)
    assert bot.proc is not None and bot.proc.poll() is None, (
        f"guardbot exited ({bot.proc.poll()}) when its database restarted"
    )
    removals = await storm_until_settled(arena, SCALE.converge_s)
    assert bot.proc.poll() is None
    print(
        f"PostgreSQL restarts took {', '.join(f'{t:.1f}s' for t in took)};"
        f" {len(arena.joined)} guests, {removals} removals"
    )
