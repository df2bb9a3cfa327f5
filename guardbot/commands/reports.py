"""The management room's reports: a timer that says when one is due. What it tells is decided
from the actions finished since the last one (core/reporting.py) and sent as a queued notice,
like any answer: durable, sent once, and its reach recorded in the same transaction."""

from __future__ import annotations

from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.observations import ReportDue
from guardbot.db import ActionStore, InboxStore

EVERY_S = 5.0


class Reports:
    def __init__(
        self,
        room_id: str,
        actions: ActionStore,
        inbox: InboxStore,
        inbox_wakeup: Wakeup,
        clock: Clock,
    ) -> None:
        self.room_id = room_id
        self.actions = actions
        self.inbox = inbox
        self.inbox_wakeup = inbox_wakeup
        self.clock = clock

    async def step(self) -> float:
        """A report is due when something was done since the last one: that goes into the
        inbox as an observation, for the evaluator to decide."""
        if self.room_id and await self.actions.unreported(limit=1):
            now = self.clock.now_ms()
            await self.inbox.add([ReportDue(now)], now)
            self.inbox_wakeup.set()
        return EVERY_S
