"""The named guests' timer: a reminder falling due becomes an observation for the evaluator
(core/reminders.py decides it, the executor sends it). It also looks again at registrations
a crash cut off (sign-up's own recovery, named_guests/accounts.py), and drops expired claim
links."""

from __future__ import annotations

import logging

from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.observations import ReminderDue
from guardbot.db.named_guest_store import ACTIVE, UNCONFIRMED, NamedGuestStore
from guardbot.matrix.client import HomeserverError
from guardbot.named_guests.accounts import Accounts

log = logging.getLogger(__name__)

PRUNE_EVERY_MS = 3_600_000
LONGEST_WAIT_S = 60.0
# A registration that could not be looked at (the homeserver failing) is looked at again then.
UNCONFIRMED_RETRY_MS = 60_000


class ReminderTimer:
    def __init__(
        self,
        store: NamedGuestStore,
        accounts: Accounts,
        inbox_wakeup: Wakeup,
        clock: Clock,
        wakeup: Wakeup,
    ) -> None:
        self.store = store
        self.accounts = accounts
        self.inbox_wakeup = inbox_wakeup
        self.clock = clock
        self.wakeup = wakeup  # a reminder counted, or an account registered: look again
        self._pruned_at = 0

    async def step(self) -> float:
        """What fell due goes to the inbox (once: an observation waiting there is not added
        twice, and a decided one is no longer due); then how long until the next."""
        now = self.clock.now_ms()
        due = await self.store.due(now, limit=1000)
        reminders = [ReminderDue(r.user_id, r.next_nag_at) for r in due if r.state == ACTIVE]
        if reminders:
            await self.store.inbox.add(reminders, now)
            self.inbox_wakeup.set()
        for row in due:
            if row.state == UNCONFIRMED:
                try:
                    await self.accounts.resolve_unconfirmed(row)
                except HomeserverError as e:
                    log.info("Could not look at %s's registration yet: %s", row.user_id, e)
                    await self.store.recheck_at(row.user_id, now + UNCONFIRMED_RETRY_MS)
        if now - self._pruned_at > PRUNE_EVERY_MS:
            await self.store.prune_claims(now)
            self._pruned_at = now
        if len(due) == 1000:
            return 1.0  # more are due than one look takes: the next, once these are decided
        next_at = await self.store.next_due_at(after=now)
        return LONGEST_WAIT_S if next_at is None else min(LONGEST_WAIT_S, (next_at - now) / 1000)
