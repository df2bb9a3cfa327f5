"""A decision stored whole: its actions queued, its audit records written, what it records
applied, and the observation it answers dropped from the inbox, in one database transaction."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from mautrix.util.async_db import Database

from guardbot.core.actions import WaitingOn, room_of
from guardbot.core.decision import (
    AuditRecord,
    Decision,
    DmLeft,
    DryRunSwitch,
    HomeserverAnswers,
    NamedGuestForgotten,
    Record,
    ReminderCounted,
    ReminderQueued,
    RemindersEnded,
    Reported,
    RoomClassified,
    RoomPolicySetting,
    RoomWoken,
    SuspensionBegan,
    SuspensionEnded,
    WatchDirectory,
)
from guardbot.db.action_store import ActionStore
from guardbot.db.audit_store import AuditStore
from guardbot.db.inbox_store import InboxStore
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.db.room_store import RoomStore
from guardbot.db.settings_store import SettingsStore
from guardbot.db.suspension_store import SuspensionStore


class DecisionStore:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.inbox = InboxStore(db)
        self.actions = ActionStore(db)
        self.audit = AuditStore(db)
        self.settings = SettingsStore(db)
        self.rooms = RoomStore(db)
        self.named_guests = NamedGuestStore(db)
        self.suspensions = SuspensionStore(db)

    async def settle(self, row_id: int, decision: Decision, now: int) -> int | None:
        """Store the decision and remove its observation; how many of its actions were new
        (one decided before, e.g. for the same event redelivered, is queued once). None, and
        nothing stored, if the observation was already decided: each is decided once, even by
        two processes at once."""
        async with self.db.acquire() as conn, conn.transaction():
            if not await self.inbox.drop(row_id):
                return None
            new = await self.actions.add_each(decision.actions, now)
            for entry in _mark_repeats(decision, new):
                await self.audit.add(entry)
            for record in decision.records:
                await self._apply(record, now)
        return sum(new)

    async def _apply(self, record: Record, now: int) -> None:
        match record:
            case RoomPolicySetting():
                await self.settings.set_room_policy(record)
            case DryRunSwitch():
                await self.settings.set_dry_run(record)
            case RoomClassified():
                await self.rooms.classify(record.room_id, record.listed, record.at)
            case RoomWoken():
                await self.actions.wake_room(record.room_id, now)
            case WatchDirectory():
                pass  # the directory's memory, told by RoomFactSource.remember
            case Reported():
                await self.actions.reported(record.done_at, record.action_id)
            case HomeserverAnswers():
                await self.actions.wake_waiting_on(WaitingOn.HOMESERVER, now)
            case RemindersEnded():
                await self.named_guests.finish(
                    record.user_id, record.reason, now, password_set=record.password_set
                )
            case ReminderQueued():
                await self.named_guests.queue_reminder(record.user_id, record.n)
            case ReminderCounted():
                await self.named_guests.sent(record.user_id, record.n, record.next_at)
            case DmLeft():
                await self.named_guests.set_dm_left(record.user_id, True)
            case NamedGuestForgotten():
                await self.named_guests.drop(record.user_id)
            case SuspensionBegan():
                await self.suspensions.began(record.user_id, record.at)
            case SuspensionEnded():
                await self.suspensions.ended(record.user_id)


REPEATED = "already queued (decided before)"


def _mark_repeats(decision: Decision, new: list[bool]) -> list[AuditRecord]:
    """The audit of an action decided again (the same event seen by a sweep, say) says that
    nothing new was queued: every "queued" in the log is one action, done once."""
    repeated = Counter(
        (f"decide {type(a).__name__}", room_of(a), getattr(a, "user_id", None))
        for a, fresh in zip(decision.actions, new, strict=True)
        if not fresh
    )
    marked = []
    for entry in decision.audit:
        key = (entry.what, entry.room_id, entry.user_id)
        if repeated[key] and entry.result == "queued":
            repeated[key] -= 1
            entry = replace(entry, result=REPEATED)
        marked.append(entry)
    return marked
