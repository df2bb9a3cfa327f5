"""Named guests suspended by expiry, and since when (db/suspension_store.py), on every
supported database."""

from __future__ import annotations

from guardbot import db
from guardbot.db.suspension_store import SuspensionStore


async def test_a_suspension_keeps_its_first_time_until_it_ends(database: db.Database) -> None:
    store = SuspensionStore(database)
    assert await store.since("@ann:example.org") is None
    await store.began("@ann:example.org", 1_000)
    await store.began("@ann:example.org", 5_000)  # found again after a crash: the first stays
    await store.began("@bob:example.org", 2_000)
    assert await store.since("@ann:example.org") == 1_000
    assert await store.all() == {"@ann:example.org": 1_000, "@bob:example.org": 2_000}
    await store.ended("@ann:example.org")
    assert await store.all() == {"@bob:example.org": 2_000}
