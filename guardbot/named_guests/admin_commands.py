"""`pwlu list`, `pwlu forget <user>` and `explain <user>` (a named guest's story) in the
management room."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from guardbot.commands.parsing import Command
from guardbot.core.decision import NOTHING, AuditRecord, Decision, NamedGuestForgotten
from guardbot.db.named_guest_store import ACTIVE, DONE, NamedGuestRow, NamedGuestStore


def describe(row: NamedGuestRow) -> str:
    if row.state == ACTIVE:
        when = (
            time.strftime(" next %Y-%m-%d %H:%M UTC", time.gmtime(row.next_nag_at / 1000))
            if row.next_nag_at
            else ""
        )
        return f"• {row.user_id}: no password yet, {row.nags_sent} reminders sent{when}"
    if row.state == DONE:
        return f"• {row.user_id}: done ({row.done_reason or 'password set'})"
    return f"• {row.user_id}: {row.state}"


@dataclass(frozen=True)
class Story:
    """A named guest as guardbot knows them, and what it did, from the audit log."""

    user_id: str
    row: NamedGuestRow | None
    events: list[AuditRecord]


class NamedGuestAdmin:
    def __init__(self, store: NamedGuestStore) -> None:
        self.store = store

    async def gather(self, command: Command) -> Any:
        if command.name == "explain":
            (user_id,) = command.args
            return Story(
                user_id, await self.store.get(user_id), await self.store.audit.find(user_id=user_id)
            )
        match command.args:
            case ("list",):
                return await self.store.listing()
            case ("forget", user_id):
                return await self.store.get(user_id)
        return None

    def decide(self, command: Command, facts: Any) -> tuple[list[str], Decision]:
        if isinstance(facts, Story):
            return story(facts), NOTHING
        match command.args:
            case ("list",):
                total, rows = facts
                shown = f", the {len(rows)} newest here" if total > len(rows) else ""
                return [f"Named guests ({total}{shown}):", *map(describe, rows)], NOTHING
            case ("forget", user_id):
                if facts is None:
                    return [f"{user_id} is not a named guest guardbot knows."], NOTHING
                forgotten = NamedGuestForgotten(user_id, facts.dm_room_id)
                return [
                    f"Forgot {user_id}: no more reminders, their claim links no longer work."
                ], Decision(records=(forgotten,))
        return ["Usage: pwlu list | pwlu forget <user>"], NOTHING


def story(facts: Story) -> list[str]:
    if facts.row is None:
        return [
            f"{facts.user_id} is not a named guest guardbot knows (explain <user> <room>"
            " tells why guardbot did or did not remove someone from a room)."
        ]
    lines = [describe(facts.row).removeprefix("• ")]
    for event in facts.events:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(event.at / 1000))
        lines.append(f"• {when}: {event.what}: {event.why} ({event.result})")
    return lines
