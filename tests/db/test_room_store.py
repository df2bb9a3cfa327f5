"""The listed rooms (db/room_store.py), on every supported database: a room newly listed is
queued for a look once, and directory changes of thousands of rooms, written in batches (more
rooms than one look-up chunk holds), give the same answers as room by room."""

from __future__ import annotations

from guardbot import db
from guardbot.core.observations import RoomListed
from tests.support.stores import OTHER, ROOM, Stores, observations


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


async def test_apply_returns_newly_listed_rooms_and_queues_their_listing(stores: Stores) -> None:
    assert await stores.rooms.apply({ROOM, OTHER}, set(), now=1000) == sorted([ROOM, OTHER])
    assert await stores.rooms.apply({ROOM, OTHER, "!third:e.org"}, set(), 2000) == ["!third:e.org"]
    assert await stores.rooms.listed() == {ROOM, OTHER, "!third:e.org"}
    assert await observations(stores) == [RoomListed(r, 1000) for r in sorted([ROOM, OTHER])] + [
        RoomListed("!third:e.org", 2000)
    ]


async def test_unlisting_and_relisting(stores: Stores) -> None:
    await stores.rooms.apply({ROOM}, set(), now=1000)
    assert await stores.rooms.apply(set(), {ROOM, OTHER}, now=2000) == []
    assert await stores.rooms.listed() == set()
    assert (await stores.rooms.known(ROOM), await stores.rooms.known(OTHER)) == (False, False)
    assert await stores.rooms.known("!never:example.org") is None
    assert await stores.rooms.apply({ROOM}, set(), now=3000) == [ROOM]
    assert await stores.rooms.known(ROOM) is True
    # The re-listing is a new observation, not a duplicate of the first one.
    assert await observations(stores) == [RoomListed(ROOM, 1000), RoomListed(ROOM, 3000)]
