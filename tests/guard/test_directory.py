"""Reconciliation from the directory's own pages: each poll compares every listed room's
joined-member count with the last poll's (stored, so a restart remembers), and a room whose
count moved goes to the inbox for a re-check of its members, with no request of its own."""

from __future__ import annotations

from typing import Any

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.observations import MembersChanged, RecheckDue, RoomListed
from guardbot.guard.directory import Directory
from guardbot.matrix.client import Homeserver
from tests.support.clock import FakeClock

A, B, C = "!a:example.org", "!b:example.org", "!c:example.org"


class ScriptedDirectory(Homeserver):
    """The public room directory, as the test sets it: room -> joined members."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1", "as-token", "@guardbot:example.org")
        self.rooms: dict[str, int] = {}
        self.pages = 0

    async def public_rooms_page(self, limit: int, since: str | None) -> dict[str, Any]:
        self.pages += 1
        chunk = [{"room_id": r, "num_joined_members": n} for r, n in self.rooms.items()]
        return {"chunk": chunk}


async def observations(database: db.Database) -> list:
    inbox = db.InboxStore(database)
    rows = await inbox.take(1000)
    for row in rows:
        await inbox.drop(row.id)
    return [r.observation for r in rows]


def directory(hs: Homeserver, database: db.Database, clock: FakeClock, **kw: Any) -> Directory:
    return Directory(
        hs, db.RoomStore(database), clock, Wakeup(), poll_interval=10, page_size=100, **kw
    )


async def test_a_moved_count_is_a_re_check_and_a_steady_one_is_nothing(
    database: db.Database,
) -> None:
    hs, clock = ScriptedDirectory(), FakeClock()
    listing = directory(hs, database, clock)
    await listing.load()
    hs.rooms = {A: 5, B: 3}
    await listing.poll_once()
    assert {type(o) for o in await observations(database)} == {RoomListed}  # listings only

    clock.advance(10)
    await listing.poll_once()
    assert await observations(database) == []  # nothing moved
    hs.rooms = {A: 6, B: 3, C: 1}  # someone came into A; C is new
    clock.advance(10)
    await listing.poll_once()
    found = await observations(database)
    assert MembersChanged(A, 6, clock.now_ms()) in found
    assert [o for o in found if isinstance(o, MembersChanged)] == [
        MembersChanged(A, 6, clock.now_ms())
    ]
    assert [o.room_id for o in found if isinstance(o, RoomListed)] == [C]
    assert hs.pages == 3  # the counts came with the pages: no request per room


async def test_the_counts_survive_a_restart(database: db.Database) -> None:
    hs, clock = ScriptedDirectory(), FakeClock()
    first = directory(hs, database, clock)
    await first.load()
    hs.rooms = {A: 5}
    await first.poll_once()
    await observations(database)

    hs.rooms = {A: 7}  # changed while guardbot was away
    again = directory(hs, database, clock)
    await again.load()
    clock.advance(10)
    await again.poll_once()
    assert await observations(database) == [MembersChanged(A, 7, clock.now_ms())]


async def test_the_slow_recheck_comes_after_its_interval(database: db.Database) -> None:
    hs, clock = ScriptedDirectory(), FakeClock()
    listing = directory(hs, database, clock, recheck_every=60)
    await listing.load()
    await listing.poll_step()
    assert await observations(database) == []  # not at start
    clock.advance(61)
    await listing.poll_step()
    assert await observations(database) == [RecheckDue(clock.now_ms())]
    clock.advance(10)
    await listing.poll_step()
    assert await observations(database) == []
