"""What tests read straight from guardbot's database: not part of the package's API."""

from __future__ import annotations

from typing import Any

from mautrix.util.async_db import Database


async def action_history(db: Database, room_id: str | None = None) -> list[dict[str, Any]]:
    """Finished and pending actions, oldest first."""
    query = (
        "SELECT id, dedup_key, kind, room_id, user_id, state, attempts, waiting_on, outcome"
        " FROM action"
    )
    rows = await (
        db.fetch(query + " WHERE room_id=$1 ORDER BY id", room_id)
        if room_id
        else db.fetch(query + " ORDER BY id")
    )
    return [dict(r) for r in rows]


async def count_claims(db: Database, user_id: str) -> int:
    """How many claim links of this named guest are stored (live or not yet pruned)."""
    return int(await db.fetchval("SELECT COUNT(*) FROM pwlu_claim WHERE user_id=$1", user_id))
