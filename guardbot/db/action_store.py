"""The durable action queue. An action stays pending until it is done or no longer applies."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from mautrix.util.async_db import Database

from guardbot.core.actions import Action, ActionState, Outcome, WaitingOn, room_of
from guardbot.core.decision import AuditRecord
from guardbot.core.observations import Observation
from guardbot.core.reporting import Finished
from guardbot.db.audit_store import AuditStore
from guardbot.db.codec import decode_action, encode
from guardbot.db.inbox_store import InboxStore


@dataclass(frozen=True)
class QueuedAction:
    id: int
    action: Action
    attempts: int
    started_at: int | None = None  # a try began then (it may have been cut off by a crash)


class ActionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.audit = AuditStore(db)
        self.inbox = InboxStore(db)

    async def add(self, actions: Iterable[Action], now: int) -> int:
        """Queue actions; one already queued under the same key is not queued again unless it
        was skipped (it did nothing). How many were queued."""
        return sum(await self.add_each(actions, now))

    async def add_each(self, actions: Iterable[Action], now: int) -> list[bool]:
        """Queue actions; for each, whether it was queued (new, or skipped before)."""
        added: list[bool] = []
        async with self.db.acquire() as conn:
            for action in actions:
                kind, payload = encode(action)
                row_id = await conn.fetchval(
                    # A skipped action did nothing: decided again (the facts changed, e.g. its
                    # room was listed again), it goes back on the queue. One pending or done is
                    # never queued twice.
                    "INSERT INTO action (dedup_key, kind, room_id, user_id, payload, state,"
                    " next_attempt_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)"
                    " ON CONFLICT (dedup_key) DO UPDATE SET state = excluded.state,"
                    " payload = excluded.payload, next_attempt_at = excluded.next_attempt_at,"
                    " created_at = excluded.created_at, attempts = 0, waiting_on = NULL,"
                    " started_at = NULL, done_at = NULL, outcome = NULL"
                    " WHERE action.state = 'skipped' RETURNING id",
                    action.key,
                    kind,
                    room_of(action) or "",  # a personal action is in no one room
                    getattr(action, "user_id", None),
                    payload,
                    ActionState.PENDING.value,
                    now,
                )
                added.append(row_id is not None)
        return added

    async def due(self, now: int, limit: int = 200) -> list[QueuedAction]:
        rows = await self.db.fetch(
            "SELECT id, kind, payload, attempts, started_at FROM action"
            " WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY id LIMIT $2",
            now,
            limit,
        )
        return [
            QueuedAction(
                r["id"], decode_action(r["kind"], r["payload"]), r["attempts"], r["started_at"]
            )
            for r in rows
        ]

    async def started(self, action_id: int, now: int) -> None:
        """A try is about to reach the homeserver: after a crash, its effect may be there."""
        await self.db.execute(
            "UPDATE action SET started_at=$2 WHERE id=$1 AND state='pending'", action_id, now
        )

    async def next_due_at(self) -> int | None:
        return await self.db.fetchval(
            "SELECT MIN(next_attempt_at) FROM action WHERE state = 'pending'"
        )

    async def finish(
        self,
        action_id: int,
        outcome: Outcome,
        now: int,
        audit: AuditRecord | None = None,
        found: Sequence[Observation] = (),
    ) -> None:
        """Record how an action ended, its audit entry, and what it found out (a sweep's
        members, for the evaluator), atomically."""
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE action SET state=$2, outcome=$3, done_at=$4, waiting_on=NULL WHERE id=$1",
                action_id,
                outcome.state.value,
                outcome.text,
                now,
            )
            if outcome.state is ActionState.DRY_RUN:
                # Held back, not done: free its key so the same decision can be taken for
                # real once dry-run is off (a sweep, or the event seen again).
                await conn.execute(
                    "UPDATE action SET dedup_key = dedup_key || '|dry-run:' || id WHERE id=$1",
                    action_id,
                )
            if audit is not None:
                await self.audit.add(audit)
            await self.inbox.add(found, now)

    async def retry_at(
        self,
        action_id: int,
        at: int,
        waiting_on: WaitingOn,
        why: str,
        found: Sequence[Observation] = (),
        now: int = 0,
    ) -> None:
        """The next try waits until `at`; what the try found out (e.g. guardbot is outside the
        room) goes to the evaluator in the same transaction."""
        async with self.db.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE action SET attempts=attempts+1, next_attempt_at=$2, waiting_on=$3,"
                " outcome=$4"
                # Pending only: a finished action keeps how it ended, even if a process that no
                # longer leads (and does not know it yet) reports its own failed try late.
                " WHERE id=$1 AND state='pending'",
                action_id,
                at,
                waiting_on.value,
                why,
            )
            if found:
                await self.inbox.add(found, now)

    async def wake_room(self, room_id: str, now: int) -> None:
        """Something changed in the room (power, membership of guardbot): try its actions now."""
        await self.db.execute(
            "UPDATE action SET next_attempt_at=$2"
            " WHERE room_id=$1 AND state='pending' AND next_attempt_at > $2",
            room_id,
            now,
        )

    async def wake_waiting_on(self, waiting_on: WaitingOn, now: int) -> None:
        """What waits only for this (e.g. the homeserver to answer again) goes now."""
        await self.db.execute(
            "UPDATE action SET next_attempt_at=$1 WHERE state = 'pending'"
            " AND next_attempt_at > $1 AND waiting_on = $2",
            now,
            waiting_on.value,
        )

    async def unreported(self, limit: int = 1000) -> list[Finished]:
        """Enforcing actions done (or held back by dry-run) since the last report, in the
        order they finished."""
        cursor = await self.db.fetchrow("SELECT done_at, action_id FROM report_cursor WHERE id=1")
        done_at, action_id = (cursor["done_at"], cursor["action_id"]) if cursor else (0, 0)
        rows = await self.db.fetch(
            "SELECT id, done_at, room_id, outcome FROM action"
            " WHERE state IN ('done', 'dry_run') AND kind IN ('Kick', 'ForbidGuestAccess')"
            " AND (done_at, id) > ($1, $2)"
            " ORDER BY done_at, id LIMIT $3",
            done_at,
            action_id,
            limit,
        )
        return [Finished(r["id"], r["done_at"], r["room_id"], r["outcome"] or "") for r in rows]

    async def reported(self, done_at: int, action_id: int) -> None:
        await self.db.execute(
            "INSERT INTO report_cursor (id, done_at, action_id) VALUES (1, $1, $2)"
            " ON CONFLICT (id) DO UPDATE SET done_at=$1, action_id=$2",
            done_at,
            action_id,
        )

    async def pending(self) -> int:
        # The literal lets the partial index on pending actions answer, not a table scan.
        return int(await self.db.fetchval("SELECT COUNT(*) FROM action WHERE state = 'pending'"))

    async def waiting(self) -> dict[str, int]:
        """Pending actions by what they wait on ("nothing": due or about to be)."""
        counts = dict.fromkeys(["nothing", *(w.value for w in WaitingOn)], 0)
        rows = await self.db.fetch(
            "SELECT waiting_on, COUNT(*) AS n FROM action WHERE state = 'pending'"
            " GROUP BY waiting_on"
        )
        for r in rows:
            counts[r["waiting_on"] or "nothing"] = int(r["n"])
        return counts

    async def oldest_pending(self, kind: str) -> int | None:
        """When the oldest pending action of this kind was decided (ms)."""
        return await self.db.fetchval(
            "SELECT MIN(created_at) FROM action WHERE state = 'pending' AND kind = $1", kind
        )

    async def count(self, state: ActionState) -> int:
        return int(
            await self.db.fetchval("SELECT COUNT(*) FROM action WHERE state=$1", state.value)
        )
