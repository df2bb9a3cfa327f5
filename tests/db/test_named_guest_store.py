"""The named-guest store on every supported database: the nag schedule's steps, claim links,
and a due-nag query whose cost follows the nags due, not the accounts known."""

from __future__ import annotations

import pytest
from mautrix.util.async_db import Scheme

from guardbot import db
from guardbot.db.named_guest_store import ACTIVE, UNCONFIRMED, NamedGuestStore
from tests.support.queries import count_claims

A, B = "@a:example.org", "@b:example.org"


@pytest.fixture
def store(database: db.Database) -> NamedGuestStore:
    return NamedGuestStore(database)


async def test_registration_rows_begin_unconfirmed_and_become_active(
    store: NamedGuestStore,
) -> None:
    await store.begin(A, "k1", now=100, check_at=200)
    row = await store.get(A)
    assert row and row.state == UNCONFIRMED and row.next_nag_at == 200
    await store.confirm(A, "k1", now=150, first_nag_at=250)
    row = await store.get(A)
    assert row and row.state == ACTIVE and row.next_nag_at == 250
    # A second registration attempt for the name changes nothing about the account.
    await store.begin(A, "k2", now=300, check_at=400)
    await store.forget(A)
    row = await store.get(A)
    assert row and row.state == ACTIVE and row.key_id == "k1"


async def test_unconfirmed_rows_are_forgotten_or_activated(store: NamedGuestStore) -> None:
    assert await store.begin(A, "k", 0, 10)
    assert await store.begin(B, "k", 0, 10)
    assert not await store.begin(B, "k", 5, 15)  # a later step of the same registration
    assert await store.unconfirmed() == 2
    row = await store.get(B)
    assert row and (row.created_at, row.attempted_at, row.next_nag_at) == (0, 5, 15)
    await store.forget(A)
    await store.activate(B, first_nag_at=99, now=5)
    assert await store.get(A) is None
    row = await store.get(B)
    assert row and row.state == ACTIVE and row.next_nag_at == 99
    assert await store.unconfirmed() == 0


async def test_a_reminder_is_queued_once_tried_with_its_link_and_counted_once(
    store: NamedGuestStore,
) -> None:
    await store.confirm(A, "k", 0, 10)
    await store.queue_reminder(A, 2)  # skips one: not taken
    assert (await store.get(A)).sending is None  # type: ignore[union-attr]
    await store.queue_reminder(A, 1)
    row = await store.get(A)
    assert row and row.sending == 1 and row.next_nag_at is None  # no longer due
    assert await store.sending_with(A, 2, "h2", now=10, expires_at=1000) is None  # not in flight
    assert await store.sending_with(A, 1, "h1", now=10, expires_at=1000) == 0  # first try
    assert await store.sending_with(A, 1, "h1b", now=11, expires_at=1000) == 1  # tried before
    assert await store.claim_user("h1", now=20) is None  # each try's link replaces the last
    assert await store.claim_user("h1b", now=20) == A
    await store.sent(A, 1, next_nag_at=500)
    await store.sent(A, 1, next_nag_at=900)  # a repeat of the same step does nothing
    row = await store.get(A)
    assert row and row.nags_sent == 1 and row.sending is None and row.next_nag_at == 500
    assert row.attempts == 0


async def test_finishing_stops_nags_and_a_password_spends_every_link(
    store: NamedGuestStore,
) -> None:
    await store.confirm(A, "k", 0, 10)
    await store.add_claim(A, "h1", now=10, expires_at=1000)
    assert await store.claim_user("h1", now=20) == A
    assert await store.claim_user("h1", now=1000) is None  # expired
    await store.add_claim(A, "h2", now=10, expires_at=1000)
    assert await store.claim_user("h1", now=20) is None  # replaced by the newer link
    assert await store.claim_user("h2", now=20) == A
    assert await store.finish(A, "asked to stop", 30)
    assert not await store.finish(A, "again", 31)  # only the first ending counts
    assert await store.due(now=10**12) == []
    assert await count_claims(store.db, A) == 1  # stopping reminders leaves the link usable
    await store.finish(A, "password set", 40, password_set=True)
    row = await store.get(A)
    assert row and row.password_set and row.done_reason == "asked to stop"
    assert await count_claims(store.db, A) == 0


async def test_due_and_dm_lookups(store: NamedGuestStore) -> None:
    await store.confirm(A, "k", 0, 100)
    await store.confirm(B, "k", 0, 50)
    assert [r.user_id for r in await store.due(now=60)] == [B]
    assert [r.user_id for r in await store.due(now=100)] == [B, A]
    assert await store.next_due_at() == 50
    await store.set_dm(A, "!dm:example.org")
    row = await store.by_dm("!dm:example.org")
    assert row and row.user_id == A and not row.dm_creating
    assert await store.dm_rooms() == ["!dm:example.org"]


async def test_due_query_uses_the_index(database: db.Database, store: NamedGuestStore) -> None:
    """Finished accounts are not in the index at all, so thousands of them cost nothing."""
    async with database.acquire() as conn:
        for i in range(2000):
            await conn.execute(
                "INSERT INTO pwlu (user_id, key_id, state, created_at, next_nag_at)"
                " VALUES ($1, 'k', 'done', 0, NULL)",
                f"@done{i}:example.org",
            )
    await store.confirm(A, "k", 0, 10)
    assert [r.user_id for r in await store.due(now=20)] == [A]
    query = (
        "SELECT user_id FROM pwlu WHERE next_nag_at IS NOT NULL AND next_nag_at <= 20"
        " ORDER BY next_nag_at LIMIT 50"
    )
    if database.scheme == Scheme.SQLITE:
        plan = " ".join(str(tuple(r)) for r in await database.fetch("EXPLAIN QUERY PLAN " + query))
    else:
        async with database.acquire() as conn, conn.transaction():
            await conn.execute("ANALYZE pwlu")
            plan = " ".join(r[0] for r in await conn.fetch("EXPLAIN " + query))
    assert "pwlu_due" in plan, plan


async def test_a_named_guests_story_is_audited_as_it_goes(store: NamedGuestStore) -> None:
    """Registered and the end, written by the store (each reminder is an action: the executor
    audits it): what `explain <user>` tells."""
    await store.confirm(A, "k", now=100, first_nag_at=200)
    await store.finish(A, "asked to stop", 300)
    await store.finish(A, "again", 310)
    story = [(e.at, e.what, e.why) for e in await store.audit.find(user_id=A)]
    assert story == [
        (100, "named guest", "registered through guardbot"),
        (300, "reminders end", "asked to stop"),
    ]
