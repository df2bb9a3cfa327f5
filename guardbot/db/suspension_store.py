"""Named guests suspended by expiry, and since when (core/expiry_rules.py)."""

from __future__ import annotations

from mautrix.util.async_db import Database


class SuspensionStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def began(self, user_id: str, at: int) -> None:
        """Recorded once: a suspension found again after a crash keeps its first time."""
        await self.db.execute(
            "INSERT INTO suspension (user_id, suspended_at) VALUES ($1, $2)"
            " ON CONFLICT (user_id) DO NOTHING",
            user_id,
            at,
        )

    async def ended(self, user_id: str) -> None:
        await self.db.execute("DELETE FROM suspension WHERE user_id = $1", user_id)

    async def since(self, user_id: str) -> int | None:
        return await self.db.fetchval(
            "SELECT suspended_at FROM suspension WHERE user_id = $1", user_id
        )

    async def all(self) -> dict[str, int]:
        rows = await self.db.fetch("SELECT user_id, suspended_at FROM suspension")
        return {r["user_id"]: r["suspended_at"] for r in rows}
