"""The audit log: every decision and action guardbot took, and why (core.decision.AuditRecord)."""

from __future__ import annotations

from mautrix.util.async_db import Database

from guardbot.core.actions import ActionState
from guardbot.core.decision import AuditRecord

_COLUMNS = "at, actor, what, room_id, user_id, why, result, dry_run, state"


class AuditStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, entry: AuditRecord) -> None:
        await self.db.execute(
            f"INSERT INTO audit ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            entry.at,
            entry.actor,
            entry.what,
            entry.room_id,
            entry.user_id,
            entry.why,
            entry.result,
            entry.dry_run,
            entry.state.value if entry.state else None,
        )

    async def find(
        self,
        *,
        room_id: str | None = None,
        user_id: str | None = None,
        since: int | None = None,
        until: int | None = None,
        limit: int = 10_000,
    ) -> list[AuditRecord]:
        clauses, args = [], []
        for column, op, value in (
            ("room_id", "=", room_id),
            ("user_id", "=", user_id),
            ("at", ">=", since),
            ("at", "<", until),
        ):
            if value is not None:
                args.append(value)
                clauses.append(f"{column} {op} ${len(args)}")
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        args.append(limit)
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM audit{where} ORDER BY id LIMIT ${len(args)}", *args
        )
        return [
            AuditRecord(
                r["at"],
                r["actor"],
                r["what"],
                r["room_id"],
                r["user_id"],
                r["why"],
                r["result"],
                bool(r["dry_run"]),
                ActionState(r["state"]) if r["state"] else None,
            )
            for r in rows
        ]

    async def count_done(self, what: str, *, room_id: str | None = None, since: int = 0) -> int:
        """How many times `what` was really done (not in dry-run), e.g. guests kicked."""
        query = "SELECT COUNT(*) FROM audit WHERE what=$1 AND at >= $2 AND state = 'done'"
        args: list = [what, since]
        if room_id is not None:
            query += " AND room_id=$3"
            args.append(room_id)
        return int(await self.db.fetchval(query, *args))
