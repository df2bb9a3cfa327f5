"""The directory (guard/directory.py) and reconciliation from its own pages: each poll compares
every listed room's joined-member count with the last poll's (stored, so a restart remembers), and
a room whose count moved goes to the inbox for a re-check of its members, with no request of its
own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.decision import RoomClassified
from guardbot.core.observations import MembersChanged, RecheckDue, RoomListed
from guardbot.guard.directory import Directory
from guardbot.matrix.client import Homeserver
from tests.support.clock import FakeClock
from tests.support.fake_homeserver import FakeHomeserver

A, B, C = "!a:example.org", "!b:example.org", "!c:example.org"


async def observations(database: db.Database) -> list:
    inbox = db.InboxStore(database)
    rows = await inbox.take(1000)
    for row in rows:
        await inbox.drop(row.id)
    return [r.observation for r in rows]


@pytest.fixture
async def client(fake_hs: FakeHomeserver) -> AsyncIterator[Homeserver]:
    """guardbot's homeserver client, talking to the scripted homeserver."""
    hs = Homeserver(fake_hs.url, "as-token", fake_hs.bot_user_id)
    yield hs
    await hs.close()


def directory(hs: Homeserver, database: db.Database, clock: FakeClock, **kw: Any) -> Directory:
    return Directory(
        hs, db.RoomStore(database), clock, Wakeup(), poll_interval=10, page_size=100, **kw
    )


def listed(hs: FakeHomeserver, rooms: dict[str, int]) -> None:
    """The public room directory, as the test sets it: room -> joined members."""
    for room in hs.rooms.values():
        room.listed = False
    for room_id, members in rooms.items():
        hs.publish(room_id, members=members)


async def test_a_moved_count_is_a_re_check_and_a_steady_one_is_nothing(
    database: db.Database, fake_hs: FakeHomeserver, client: Homeserver
) -> None:
    clock = FakeClock()
    listing = directory(client, database, clock)
    await listing.load()
    listed(fake_hs, {A: 5, B: 3})
    await listing.poll_once()
    assert {type(o) for o in await observations(database)} == {RoomListed}  # listings only

    clock.advance(10)
    await listing.poll_once()
    assert await observations(database) == []  # nothing moved
    listed(fake_hs, {A: 6, B: 3, C: 1})  # someone came into A; C is new
    clock.advance(10)
    await listing.poll_once()
    found = await observations(database)
    assert MembersChanged(A, 6, clock.now_ms()) in found
    assert [o for o in found if isinstance(o, MembersChanged)] == [
        MembersChanged(A, 6, clock.now_ms())
    ]
    assert [o.room_id for o in found if isinstance(o, RoomListed)] == [C]
    # The counts came with the pages: no request per room.
    assert [c.route for c in fake_hs.called()] == ["public_rooms"] * 3


async def test_a_room_met_before_its_first_count_is_looked_at_then(
    database: db.Database, fake_hs: FakeHomeserver, client: Homeserver
) -> None:
    """Found with workers: a room guardbot looked up when it joined it (so no poll ever called
    it new) got its first count only after a guest's join the homeserver lost; that count was
    taken as the starting point, and nothing ever looked at the room's members again."""
    clock = FakeClock()
    listing = directory(client, database, clock)
    await listing.load()
    listing.remember(RoomClassified(A, True, clock.now_ms()))
    listed(fake_hs, {A: 3})  # the owner, guardbot, and a guest nobody told guardbot about
    await listing.poll_once()
    assert await observations(database) == [MembersChanged(A, 3, clock.now_ms())]
    clock.advance(10)
    await listing.poll_once()
    assert await observations(database) == []  # counted now: only a change is looked at


async def test_the_counts_survive_a_restart(
    database: db.Database, fake_hs: FakeHomeserver, client: Homeserver
) -> None:
    clock = FakeClock()
    first = directory(client, database, clock)
    await first.load()
    listed(fake_hs, {A: 5})
    await first.poll_once()
    await observations(database)

    listed(fake_hs, {A: 7})  # changed while guardbot was away
    again = directory(client, database, clock)
    await again.load()
    clock.advance(10)
    await again.poll_once()
    assert await observations(database) == [MembersChanged(A, 7, clock.now_ms())]


async def test_the_slow_recheck_comes_after_its_interval(
    database: db.Database, client: Homeserver
) -> None:
    clock = FakeClock()
    listing = directory(client, database, clock, recheck_every=60)
    await listing.load()
    await listing.poll_step()
    assert await observations(database) == []  # not at start
    clock.advance(61)
    await listing.poll_step()
    assert await observations(database) == [RecheckDue(clock.now_ms())]
    clock.advance(10)
    await listing.poll_step()
    assert await observations(database) == []
