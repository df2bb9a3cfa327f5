"""The leader's lease (db/lease_store.py) on the real databases: one holder at a time however
many ask at once, a lease that runs out is taken over with a new term (the database's clock),
and the old term can no longer renew or release it."""

from __future__ import annotations

import asyncio

import pytest

from guardbot import db
from guardbot.db.lease_store import LeaseStore


async def test_one_holder_and_a_new_term_after_it_runs_out(database: db.Database) -> None:
    lease = LeaseStore(database)
    assert await lease.acquire("a", 300) == 1
    assert await lease.acquire("b", 300) is None  # held
    assert await lease.renew(1, 300)
    current = await lease.current()
    assert current is not None and current.holder == "a" and current.expires_in_ms > 0
    await asyncio.sleep(0.4)  # a's lease runs out (the database's clock)
    assert await lease.acquire("b", 300) == 2
    assert not await lease.renew(1, 300), "the old term renewed after a takeover"
    await lease.release(1)  # a stale release changes nothing
    assert await lease.acquire("a", 300) is None
    await lease.release(2)
    assert await lease.acquire("a", 300) == 3  # handed back: no wait
    assert await lease.acquire("c", 60_000, force=True) == 4


async def test_many_asking_at_once_get_one_lease(database_url: str) -> None:
    if database_url.startswith("sqlite:"):
        pytest.skip("SQLite serves one process (db/single_instance.py)")
    databases = [db.create(database_url) for _ in range(6)]
    await databases[0].start()
    for d in databases[1:]:
        await d.start()
    try:
        for round_ in range(5):
            terms = await asyncio.gather(
                *(LeaseStore(d).acquire(f"p{i}", 200) for i, d in enumerate(databases))
            )
            assert sum(t is not None for t in terms) == 1, (round_, terms)
            await asyncio.sleep(0.3)
    finally:
        for d in databases:
            await d.stop()
