"""Which rooms guardbot has classified, and whether they are listed in the public directory."""

from __future__ import annotations

from mautrix.util.async_db import Database

from ..triage import RoomListed
from .inbox import InboxStore


class RoomStore:
    def __init__(self, db: Database, inbox: InboxStore) -> None:
        self.db = db
        self.inbox = inbox

    async def listed(self) -> set[str]:
        rows = await self.db.fetch("SELECT room_id FROM room WHERE listed")
        return {r["room_id"] for r in rows}

    async def known(self, room_id: str) -> bool | None:
        """True/False if classified, None if guardbot has never looked."""
        value = await self.db.fetchval("SELECT listed FROM room WHERE room_id=$1", room_id)
        return None if value is None else bool(value)

    async def apply(self, listed: set[str], unlisted: set[str], now: int) -> list[str]:
        """Record a directory change; each newly listed room also goes to the inbox, in the same
        database transaction, so its sweep cannot be lost between the two."""
        async with self.db.acquire() as conn, conn.transaction():
            for room_id in unlisted:
                await conn.execute(
                    "INSERT INTO room (room_id, listed, listed_at, checked_at)"
                    " VALUES ($1, false, NULL, $2) ON CONFLICT (room_id)"
                    " DO UPDATE SET listed=false, listed_at=NULL, checked_at=$2",
                    room_id,
                    now,
                )
            newly = []
            for room_id in sorted(listed):
                was = await conn.fetchval("SELECT listed FROM room WHERE room_id=$1", room_id)
                if was:
                    continue
                await conn.execute(
                    "INSERT INTO room (room_id, listed, listed_at, checked_at)"
                    " VALUES ($1, true, $2, $2) ON CONFLICT (room_id)"
                    " DO UPDATE SET listed=true, listed_at=$2, checked_at=$2",
                    room_id,
                    now,
                )
                newly.append(room_id)
            await self.inbox.add([RoomListed(r, now) for r in newly], now)
        return newly
