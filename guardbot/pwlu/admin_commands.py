"""`pwlu list` and `pwlu forget <user>` in the management room."""

from __future__ import annotations

import time
from typing import Any

from guardbot.commands.parsing import Command
from guardbot.core.decision import NOTHING, Decision, NamedGuestForgotten
from guardbot.db.named_guests import ACTIVE, DONE, PwluRow, PwluStore


def describe(row: PwluRow) -> str:
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


class PwluAdmin:
    def __init__(self, store: PwluStore) -> None:
        self.store = store

    async def gather(self, command: Command) -> Any:
        match command.args:
            case ("list",):
                return await self.store.listing()
            case ("forget", user_id):
                return await self.store.get(user_id)
        return None

    def decide(self, command: Command, facts: Any) -> tuple[list[str], Decision]:
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
