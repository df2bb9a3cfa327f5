"""Directory changes of thousands of rooms, written in batches (more rooms than one look-up
chunk holds): the same answers as room by room, on every supported database."""

from __future__ import annotations

from guardbot import db
from guardbot.core.observations import RoomListed


def rooms(start: int, stop: int) -> set[str]:
    return {f"!r{n:05d}:example.org" for n in range(start, stop)}


async def test_big_directory_changes_list_each_room_once(database: db.Database) -> None:
    inbox = db.InboxStore(database)
    store = db.RoomStore(database)
    first = rooms(0, 1200)
    assert await store.apply(first, set(), now=1000) == sorted(first)
    # Some listed again (already known), some new, some gone.
    grown = rooms(100, 1500)
    assert await store.apply(grown, rooms(0, 100), now=2000) == sorted(rooms(1200, 1500))
    assert await store.listed() == grown
    # The ones that went come back: only they are newly listed, at the new time.
    assert await store.apply(rooms(0, 1500), set(), now=3000) == sorted(rooms(0, 100))
    assert await store.known("!r00000:example.org") is True
    listings = [r.observation for r in await inbox.take(5000)]
    assert len(listings) == 1600 and all(isinstance(o, RoomListed) for o in listings)
    assert sum(o.listed_at == 3000 for o in listings) == 100
