"""`pwlu list` and `pwlu forget <user>` in the management room."""

from __future__ import annotations

import time
from collections.abc import MutableSet

from guardbot.commands.room import Command
from guardbot.core.observations import Message
from guardbot.db.named_guests import ACTIVE, PwluRow, PwluStore


def describe(row: PwluRow) -> str:
    if row.state == ACTIVE:
        when = (
            time.strftime(" next %Y-%m-%d %H:%M UTC", time.gmtime(row.next_nag_at / 1000))
            if row.next_nag_at
            else ""
        )
        return f"• {row.user_id}: no password yet, {row.nags_sent} reminders sent{when}"
    if row.state == "done":
        return f"• {row.user_id}: done ({row.done_reason or 'password set'})"
    return f"• {row.user_id}: {row.state}"


class PwluAdmin:
    def __init__(self, store: PwluStore, conversations: MutableSet[str]) -> None:
        self.store = store
        self.conversations = conversations

    async def command(self, msg: Message, command: Command) -> list[str]:
        match command.args:
            case ("list",):
                total, rows = await self.store.listing()
                shown = f", the {len(rows)} newest here" if total > len(rows) else ""
                return [f"Named guests ({total}{shown}):", *map(describe, rows)]
            case ("forget", user_id):
                row = await self.store.drop(user_id)
                if row is None:
                    return [f"{user_id} is not a named guest guardbot knows."]
                if row.dm_room_id:
                    self.conversations.discard(row.dm_room_id)
                return [f"Forgot {user_id}: no more reminders, their claim links no longer work."]
        return ["Usage: pwlu list | pwlu forget <user>"]
