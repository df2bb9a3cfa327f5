"""What guardbot did, reported to the management room in batches, so that a join storm is one
message, not hundreds."""

from __future__ import annotations

import logging

from guardbot.commands.parsing import notice
from guardbot.core.actions import ENFORCING, Action, ActionState, Outcome
from guardbot.core.clock import Clock
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger(__name__)

SHOWN = 20
EVERY_S = 5.0


class Reports:
    def __init__(self, hs: Homeserver, room_id: str, clock: Clock) -> None:
        self.hs = hs
        self.room_id = room_id
        self.clock = clock
        self._pending: list[str] = []

    def note(self, action: Action, outcome: Outcome) -> None:
        """Executor listener: remember what was done, for the next batch."""
        done = outcome.state in (ActionState.DONE, ActionState.DRY_RUN)
        if self.room_id and isinstance(action, ENFORCING) and done:
            self._pending.append(f"• {action.room_id}: {outcome.text}")

    async def step(self) -> float:
        if self._pending:
            batch, self._pending = self._pending, []
            more = [f"• … and {len(batch) - SHOWN} more"] if len(batch) > SHOWN else []
            lines = [f"guardbot acted {len(batch)} times:", *batch[:SHOWN], *more]
            message = notice(self.room_id, lines, "")
            try:
                txn_id = f"report-{self.clock.now_ms()}-{len(batch)}"
                await self.hs.send_message(self.room_id, message.text, message.html, txn_id)
            except HomeserverError as e:
                log.warning("Could not report to the management room: %s", e)
        return EVERY_S
