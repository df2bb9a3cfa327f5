"""Appservice transactions seen, and the observations guardbot has still to decide on.

A transaction is answered only after its observations are in the inbox, so a crash after the
answer loses nothing; a redelivered transaction (same txn ID, same body) adds nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from mautrix.util.async_db import Database

from guardbot.core.observations import Observation, observation_key
from guardbot.db.codec import decode_observation, encode


@dataclass(frozen=True)
class InboxRow:
    id: int
    observation: Observation


class InboxStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def record_transaction(
        self, txn_id: str, body_hash: str, observations: Iterable[Observation], now: int
    ) -> bool:
        """Store a transaction's observations; False if this exact transaction was seen before.

        The body hash tells a true redelivery from a new transaction reusing an old ID, which
        happens when the homeserver's database is reset (its txn IDs restart at 1)."""
        async with self.db.acquire() as conn, conn.transaction():
            seen = await conn.fetchval("SELECT body_hash FROM txn WHERE txn_id=$1", txn_id)
            if seen == body_hash:
                return False
            if seen is None:
                await conn.execute(
                    "INSERT INTO txn (txn_id, body_hash, received_at) VALUES ($1, $2, $3)",
                    txn_id,
                    body_hash,
                    now,
                )
            else:
                await conn.execute(
                    "UPDATE txn SET body_hash=$2, received_at=$3 WHERE txn_id=$1",
                    txn_id,
                    body_hash,
                    now,
                )
            await self.add(observations, now)
        return True

    async def add(self, observations: Iterable[Observation], now: int) -> None:
        rows = [(observation_key(o), *encode(o), now) for o in observations]
        if not rows:
            return
        async with self.db.acquire() as conn:
            await conn.executemany(
                "INSERT INTO inbox (dedup_key, kind, payload, received_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (dedup_key) DO NOTHING",
                rows,
            )

    async def take(self, limit: int = 100) -> list[InboxRow]:
        rows = await self.db.fetch(
            "SELECT id, kind, payload FROM inbox ORDER BY id LIMIT $1", limit
        )
        return [InboxRow(r["id"], decode_observation(r["kind"], r["payload"])) for r in rows]

    async def drop(self, row_id: int) -> bool:
        """False: already gone (decided by another process, e.g. a leader that lost its lease
        and does not know it yet)."""
        gone = await self.db.fetchval("DELETE FROM inbox WHERE id=$1 RETURNING id", row_id)
        return gone is not None

    async def oldest_received_at(self) -> int | None:
        return await self.db.fetchval("SELECT MIN(received_at) FROM inbox")

    async def size(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM inbox"))

    async def prune_transactions(self, before: int) -> None:
        await self.db.execute("DELETE FROM txn WHERE received_at < $1", before)
