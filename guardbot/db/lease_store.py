"""The leader's lease: which guardbot of an active/standby set acts. SQL only; the timing
rules live in guardbot/leader.py."""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database, Scheme

# The database's clock in ms, so that no two processes' clocks are ever compared.
_SQLITE_NOW = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
_POSTGRES_NOW = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"


@dataclass(frozen=True)
class LeaseHolder:
    holder: str
    term: int
    expires_in_ms: int  # negative: run out


class LeaseStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._now = _SQLITE_NOW if db.scheme == Scheme.SQLITE else _POSTGRES_NOW

    async def acquire(self, holder: str, lease_ms: int, *, force: bool = False) -> int | None:
        """Take the lease if it is free or has run out (`force`: whatever its state, for a
        process that knows it is alone); the new term, or None while another holds it."""
        now = self._now
        return await self.db.fetchval(
            "INSERT INTO leader (id, holder, term, expires_at)"
            f" VALUES (1, $1, 1, {now} + $2)"
            " ON CONFLICT (id) DO UPDATE SET holder = excluded.holder,"
            f" term = leader.term + 1, expires_at = {now} + $2"
            f" WHERE leader.expires_at < {now} OR $3"
            " RETURNING term",
            holder,
            lease_ms,
            force,
        )

    async def renew(self, term: int, lease_ms: int) -> bool:
        """Extend the lease of `term`; False once another process has taken over."""
        row = await self.db.fetchval(
            f"UPDATE leader SET expires_at = {self._now} + $2 WHERE id = 1 AND term = $1"
            " RETURNING term",
            term,
            lease_ms,
        )
        return row is not None

    async def release(self, term: int) -> None:
        """Hand the lease back at a clean stop: a standby takes over without waiting."""
        await self.db.execute(
            f"UPDATE leader SET expires_at = {self._now} - 1 WHERE id = 1 AND term = $1", term
        )

    async def current(self) -> LeaseHolder | None:
        row = await self.db.fetchrow(
            f"SELECT holder, term, expires_at - {self._now} AS left_ms FROM leader WHERE id = 1"
        )
        if row is None:
            return None
        return LeaseHolder(row["holder"], row["term"], row["left_ms"])
