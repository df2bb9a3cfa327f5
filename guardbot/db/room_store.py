"""Which rooms guardbot has classified, and whether they are listed in the public directory."""

from __future__ import annotations

from mautrix.util.async_db import Database

from guardbot.core.observations import MembersChanged, RoomListed
from guardbot.db.inbox_store import InboxStore

# Room IDs per look-up: well under SQLite's limit on a statement's parameters.
_CHUNK = 500


class RoomStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.inbox = InboxStore(db)

    async def listed(self) -> set[str]:
        rows = await self.db.fetch("SELECT room_id FROM room WHERE listed")
        return {r["room_id"] for r in rows}

    async def member_counts(self) -> dict[str, int]:
        """Each listed room's joined-member count at the last poll (rooms with one)."""
        rows = await self.db.fetch(
            "SELECT room_id, joined_members FROM room WHERE listed AND joined_members IS NOT NULL"
        )
        return {r["room_id"]: r["joined_members"] for r in rows}

    async def record_counts(self, counts: dict[str, int], changed: list[str], now: int) -> None:
        """New member counts; each room in `changed` also goes to the inbox as MembersChanged,
        in the same transaction, so a count is never stored without its re-check."""
        if not counts:
            return
        async with self.db.acquire() as conn, conn.transaction():
            await conn.executemany(
                "UPDATE room SET joined_members=$2 WHERE room_id=$1",
                [(room_id, n) for room_id, n in counts.items()],
            )
            await self.inbox.add([MembersChanged(r, counts[r], now) for r in changed], now)

    async def known(self, room_id: str) -> bool | None:
        """True/False if classified, None if guardbot has never looked."""
        value = await self.db.fetchval("SELECT listed FROM room WHERE room_id=$1", room_id)
        return None if value is None else bool(value)

    async def classify(self, room_id: str, listed: bool, now: int) -> None:
        """One room looked up on its own, before the next poll (its decision sweeps it)."""
        await self.db.execute(
            "INSERT INTO room (room_id, listed, listed_at, checked_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (room_id) DO UPDATE SET listed=$2, listed_at=$3, checked_at=$4",
            room_id,
            listed,
            now if listed else None,
            now,
        )

    async def apply(self, listed: set[str], unlisted: set[str], now: int) -> list[str]:
        """Record a directory change; each newly listed room also goes to the inbox, in the same
        database transaction, so its sweep cannot be lost between the two. Statements go in
        batches: a statement per room made a first poll of 10k rooms take seconds."""
        async with self.db.acquire() as conn, conn.transaction():
            if unlisted:
                await conn.executemany(
                    "INSERT INTO room (room_id, listed, listed_at, checked_at)"
                    " VALUES ($1, false, NULL, $2) ON CONFLICT (room_id)"
                    " DO UPDATE SET listed=false, listed_at=NULL, checked_at=$2",
                    [(room_id, now) for room_id in unlisted],
                )
            candidates = sorted(listed)
            already: set[str] = set()
            for start in range(0, len(candidates), _CHUNK):
                chunk = candidates[start : start + _CHUNK]
                marks = ", ".join(f"${i}" for i in range(1, len(chunk) + 1))
                rows = await conn.fetch(
                    f"SELECT room_id FROM room WHERE listed AND room_id IN ({marks})", *chunk
                )
                already.update(r["room_id"] for r in rows)
            newly = [room_id for room_id in candidates if room_id not in already]
            if newly:
                await conn.executemany(
                    "INSERT INTO room (room_id, listed, listed_at, checked_at)"
                    " VALUES ($1, true, $2, $2) ON CONFLICT (room_id)"
                    " DO UPDATE SET listed=true, listed_at=$2, checked_at=$2",
                    [(room_id, now) for room_id in newly],
                )
            await self.inbox.add([RoomListed(r, now) for r in newly], now)
        return newly
