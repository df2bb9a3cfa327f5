"""Named guests (PWLU) and their claim links: the durable reminder schedule lives here.

A row's life: `unconfirmed` while its registration is under way (or was cut off by a crash),
`active` while guardbot may remind, `done` for good. Reminder n is first decided (`sending =
n`, queued as a `Remind` action), then sent by the executor, then counted, so a crash in
between sends the same reminder n, never n+1 and never a second copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from mautrix.util.async_db import Database

from guardbot.core.decision import AuditRecord
from guardbot.core.observations import Observation
from guardbot.db.audit_store import AuditStore
from guardbot.db.inbox_store import InboxStore


class NamedGuestState(StrEnum):
    UNCONFIRMED = "unconfirmed"
    ACTIVE = "active"
    DONE = "done"


UNCONFIRMED, ACTIVE, DONE = NamedGuestState

_COLUMNS = (
    "user_id, key_id, state, done_reason, password_set, created_at, nags_sent, sending,"
    " next_nag_at, attempts, dm_room_id, dm_creating, dm_left, dm_reinvited, checked_at,"
    " attempted_at"
)


@dataclass(frozen=True)
class NamedGuestRow:
    user_id: str
    key_id: str
    state: NamedGuestState
    done_reason: str | None
    password_set: bool
    created_at: int
    nags_sent: int
    sending: int | None
    next_nag_at: int | None
    attempts: int
    dm_room_id: str | None
    dm_creating: bool
    dm_left: bool
    dm_reinvited: bool
    checked_at: int | None
    attempted_at: int | None  # unconfirmed: guardbot's last registration call for it

    @classmethod
    def from_record(cls, r: Any) -> NamedGuestRow:
        return cls(
            user_id=r["user_id"],
            key_id=r["key_id"],
            state=NamedGuestState(r["state"]),
            done_reason=r["done_reason"],
            password_set=bool(r["password_set"]),
            created_at=r["created_at"],
            nags_sent=r["nags_sent"],
            sending=r["sending"],
            next_nag_at=r["next_nag_at"],
            attempts=r["attempts"],
            dm_room_id=r["dm_room_id"],
            dm_creating=bool(r["dm_creating"]),
            dm_left=bool(r["dm_left"]),
            dm_reinvited=bool(r["dm_reinvited"]),
            checked_at=r["checked_at"],
            attempted_at=r["attempted_at"],
        )


class NamedGuestStore:
    """A named guest's story is audited as it goes (registered, each reminder, the end), in
    the transaction that records it, so `explain <user>` can tell it."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.audit = AuditStore(db)
        self.inbox = InboxStore(db)

    async def _story(self, at: int, user_id: str, what: str, why: str, result: str) -> None:
        await self.audit.add(AuditRecord(at, "guardbot", what, None, user_id, why, result))

    # -- registration ----------------------------------------------------------------------
    async def begin(self, user_id: str, key_id: str, now: int, check_at: int) -> bool:
        """A registration step that may create user_id's account is about to reach the
        homeserver. Recorded first, so an account created just before a crash is still found
        (it is looked for at check_at). True if this call made the row; a row that exists
        keeps its first attempt and notes this one."""
        async with self.db.acquire() as conn, conn.transaction():
            made = await conn.fetchval(
                "INSERT INTO pwlu (user_id, key_id, state, created_at, next_nag_at, attempted_at)"
                " VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT (user_id) DO NOTHING"
                " RETURNING 1",
                user_id,
                key_id,
                UNCONFIRMED,
                now,
                check_at,
            )
            if not made:
                await conn.execute(
                    "UPDATE pwlu SET attempted_at=$2, next_nag_at=$3 WHERE user_id=$1 AND state=$4",
                    user_id,
                    now,
                    check_at,
                    UNCONFIRMED,
                )
        return bool(made)

    async def unconfirmed(self) -> int:
        return int(await self.db.fetchval("SELECT COUNT(*) FROM pwlu WHERE state=$1", UNCONFIRMED))

    async def confirm(
        self,
        user_id: str,
        key_id: str,
        now: int,
        first_nag_at: int,
        then: Sequence[Observation] = (),
    ) -> None:
        """The homeserver created the account with the derived password (so it is known to
        work as of now): reminders start. `then` (what follows, e.g. a guest's rooms to carry
        over) goes to the inbox in the same transaction."""
        async with self.db.acquire() as conn, conn.transaction():
            confirmed = await conn.fetchval(
                "INSERT INTO pwlu (user_id, key_id, state, created_at, next_nag_at, checked_at)"
                " VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT (user_id) DO UPDATE"
                " SET state=$3, key_id=$2, created_at=$4, next_nag_at=$5, attempts=0,"
                " checked_at=$4 WHERE pwlu.state=$6 RETURNING user_id",
                user_id,
                key_id,
                ACTIVE,
                now,
                first_nag_at,
                UNCONFIRMED,
            )
            if confirmed:
                await self._story(
                    now, user_id, "named guest", "registered through guardbot", "reminders start"
                )
            if then:
                await self.inbox.add(then, now)

    async def activate(self, user_id: str, first_nag_at: int, now: int) -> None:
        """An unconfirmed row whose account turned out to exist (its registration finished
        but guardbot crashed before it heard)."""
        async with self.db.acquire() as conn, conn.transaction():
            activated = await conn.fetchval(
                "UPDATE pwlu SET state=$2, next_nag_at=$4 WHERE user_id=$1 AND state=$3"
                " RETURNING user_id",
                user_id,
                ACTIVE,
                UNCONFIRMED,
                first_nag_at,
            )
            if activated:
                why = "registered through guardbot, found again after a restart"
                await self._story(now, user_id, "named guest", why, "reminders start")

    async def forget(self, user_id: str) -> None:
        """An unconfirmed row whose registration never happened."""
        await self.db.execute(
            "DELETE FROM pwlu WHERE user_id=$1 AND state=$2", user_id, UNCONFIRMED
        )

    # -- reading ---------------------------------------------------------------------------
    async def get(self, user_id: str) -> NamedGuestRow | None:
        r = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM pwlu WHERE user_id=$1", user_id)
        return NamedGuestRow.from_record(r) if r else None

    async def by_dm(self, room_id: str) -> NamedGuestRow | None:
        r = await self.db.fetchrow(f"SELECT {_COLUMNS} FROM pwlu WHERE dm_room_id=$1", room_id)
        return NamedGuestRow.from_record(r) if r else None

    async def due(self, now: int, limit: int = 50) -> list[NamedGuestRow]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM pwlu WHERE next_nag_at IS NOT NULL AND next_nag_at <= $1"
            " ORDER BY next_nag_at LIMIT $2",
            now,
            limit,
        )
        return [NamedGuestRow.from_record(r) for r in rows]

    async def next_due_at(self, after: int = -1) -> int | None:
        """The first reminder (or registration check) due after `after`: those due already
        wait in the inbox."""
        return await self.db.fetchval(
            "SELECT MIN(next_nag_at) FROM pwlu WHERE next_nag_at IS NOT NULL AND next_nag_at > $1",
            after,
        )

    async def dm_rooms(self) -> list[str]:
        rows = await self.db.fetch("SELECT dm_room_id FROM pwlu WHERE dm_room_id IS NOT NULL")
        return [r["dm_room_id"] for r in rows]

    # -- reminders -------------------------------------------------------------------------
    async def queue_reminder(self, user_id: str, n: int) -> None:
        """Reminder n is decided: in flight until counted, and nothing else falls due."""
        await self.db.execute(
            "UPDATE pwlu SET sending=$2, next_nag_at=NULL, attempts=0 WHERE user_id=$1"
            " AND state=$3 AND nags_sent=$4",
            user_id,
            n,
            ACTIVE,
            n - 1,
        )

    async def sending_with(
        self, user_id: str, n: int, token_hash: str, now: int, expires_at: int
    ) -> int | None:
        """Reminder n is about to go out with this claim link (the user's only one from now
        on). How many times it had been tried before (a crash may have cut a send short), or
        None if it is no longer the one in flight."""
        async with self.db.acquire() as conn, conn.transaction():
            tried = await conn.fetchval(
                "UPDATE pwlu SET attempts=attempts+1 WHERE user_id=$1 AND state=$2"
                " AND sending=$3 RETURNING attempts - 1",
                user_id,
                ACTIVE,
                n,
            )
            if tried is None:
                return None
            await self.add_claim(user_id, token_hash, now, expires_at, conn=conn)
        return int(tried)

    async def sent(self, user_id: str, n: int, next_nag_at: int | None) -> None:
        """Reminder n is out; the next is due at next_nag_at, or never (the last one)."""
        await self.db.execute(
            "UPDATE pwlu SET nags_sent=$2, sending=NULL, attempts=0, next_nag_at=$3"
            " WHERE user_id=$1 AND sending=$2",
            user_id,
            n,
            next_nag_at,
        )

    async def recheck_at(self, user_id: str, at: int) -> None:
        """An unconfirmed registration that could not be looked at now: again at `at`."""
        await self.db.execute(
            "UPDATE pwlu SET next_nag_at=$2, attempts=attempts+1 WHERE user_id=$1 AND state=$3",
            user_id,
            at,
            UNCONFIRMED,
        )

    async def finish(
        self,
        user_id: str,
        reason: str,
        now: int,
        *,
        password_set: bool = False,
        then: Observation | None = None,
    ) -> bool:
        """Reminders are over for good. True if this call ended them (they were not over
        already). `then` goes to the inbox in the same transaction."""
        async with self.db.acquire() as conn, conn.transaction():
            ended = await conn.fetchval(
                "UPDATE pwlu SET state=$2, done_reason=$3, next_nag_at=NULL, sending=NULL"
                " WHERE user_id=$1 AND state<>$2 RETURNING user_id",
                user_id,
                DONE,
                reason,
            )
            if ended is not None:
                await self._story(now, user_id, "reminders end", reason, "no more")
            if password_set:
                await conn.execute("UPDATE pwlu SET password_set=true WHERE user_id=$1", user_id)
                # A password is set: every claim link for this account is spent.
                await conn.execute("DELETE FROM pwlu_claim WHERE user_id=$1", user_id)
            if then is not None:
                await self.inbox.add([then], now)
        return ended is not None

    async def unschedule(self, user_id: str) -> None:
        await self.db.execute(
            "UPDATE pwlu SET next_nag_at=NULL, sending=NULL WHERE user_id=$1 AND state=$2",
            user_id,
            DONE,
        )

    async def checked(self, user_id: str, now: int) -> None:
        await self.db.execute("UPDATE pwlu SET checked_at=$2 WHERE user_id=$1", user_id, now)

    # -- the DM ----------------------------------------------------------------------------
    async def dm_creating(self, user_id: str) -> None:
        await self.db.execute("UPDATE pwlu SET dm_creating=true WHERE user_id=$1", user_id)

    async def set_dm(self, user_id: str, room_id: str) -> None:
        await self.db.execute(
            "UPDATE pwlu SET dm_room_id=$2, dm_creating=false WHERE user_id=$1", user_id, room_id
        )

    async def set_dm_left(self, user_id: str, left: bool) -> None:
        await self.db.execute("UPDATE pwlu SET dm_left=$2 WHERE user_id=$1", user_id, left)

    async def reinvited(self, user_id: str) -> None:
        await self.db.execute(
            "UPDATE pwlu SET dm_left=false, dm_reinvited=true WHERE user_id=$1", user_id
        )

    # -- claim links -----------------------------------------------------------------------
    async def add_claim(
        self, user_id: str, token_hash: str, now: int, expires_at: int, *, conn: Any = None
    ) -> None:
        """The user's one valid link from now on: each reminder's replaces the one before, so
        an old DM (or a proxy log holding its URL) opens nothing."""
        if conn is None:
            async with self.db.acquire() as own, own.transaction():
                await self.add_claim(user_id, token_hash, now, expires_at, conn=own)
            return
        await conn.execute("DELETE FROM pwlu_claim WHERE user_id=$1", user_id)
        await conn.execute(
            "INSERT INTO pwlu_claim (token_hash, user_id, created_at, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            token_hash,
            user_id,
            now,
            expires_at,
        )

    async def claim_user(self, token_hash: str, now: int) -> str | None:
        """The user a claim link belongs to, if it is known and unexpired."""
        return await self.db.fetchval(
            "SELECT user_id FROM pwlu_claim WHERE token_hash=$1 AND expires_at > $2",
            token_hash,
            now,
        )

    async def prune_claims(self, now: int) -> None:
        await self.db.execute("DELETE FROM pwlu_claim WHERE expires_at <= $1", now)

    # -- for server admins -----------------------------------------------------------------
    async def counts(self) -> dict[str, int]:
        """Named guests by state, for the metrics: registered (reminders going), claimed
        (password set), stopped (reminders over without one), expired (deactivated)."""
        row = await self.db.fetchrow(
            "SELECT"
            " SUM(CASE WHEN state = $1 AND NOT password_set THEN 1 ELSE 0 END) AS registered,"
            " SUM(CASE WHEN password_set THEN 1 ELSE 0 END) AS claimed,"
            " SUM(CASE WHEN state = $2 AND NOT password_set AND done_reason <> $3"
            " THEN 1 ELSE 0 END) AS stopped,"
            " SUM(CASE WHEN done_reason = $3 THEN 1 ELSE 0 END) AS expired"
            " FROM pwlu",
            ACTIVE.value,
            DONE.value,
            "deactivated",
        )
        return {k: int(row[k] or 0) for k in ("registered", "claimed", "stopped", "expired")}

    async def passwordless(self) -> dict[str, str]:
        """Named guests still on guardbot's derived password: user ID -> key ID."""
        rows = await self.db.fetch(
            "SELECT user_id, key_id FROM pwlu WHERE NOT password_set AND state <> $1",
            UNCONFIRMED.value,
        )
        return {r["user_id"]: r["key_id"] for r in rows}

    async def listing(self, limit: int = 50) -> tuple[int, list[NamedGuestRow]]:
        """How many named guests guardbot knows, and the most recent ones."""
        total = int(await self.db.fetchval("SELECT COUNT(*) FROM pwlu"))
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM pwlu ORDER BY created_at DESC LIMIT $1", limit
        )
        return total, [NamedGuestRow.from_record(r) for r in rows]

    async def drop(self, user_id: str) -> NamedGuestRow | None:
        """Forget a named guest entirely: no more reminders, claim links dead."""
        async with self.db.acquire() as conn, conn.transaction():
            row = await self.get(user_id)
            await conn.execute("DELETE FROM pwlu_claim WHERE user_id=$1", user_id)
            await conn.execute("DELETE FROM pwlu WHERE user_id=$1", user_id)
        return row
