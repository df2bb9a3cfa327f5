"""The expiry pass: every account of the homeserver, a page at a time through the admin API,
read against the pure rules; each one whose next step is due goes to the inbox as an
`AccountIdle` observation. O(accounts) per pass, one admin call per page (plus a device count
for a named guest only when it decides the step), nothing stored when nothing is due."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.expiry_rules import (
    Account,
    ExpiryRules,
    Step,
    Upcoming,
    due,
    last_active,
    next_step,
)
from guardbot.core.observations import AccountIdle
from guardbot.db import InboxStore
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.db.suspension_store import SuspensionStore
from guardbot.matrix.client import Homeserver

log = logging.getLogger(__name__)

PAGE = 500


def account_of(
    entry: dict[str, Any], *, passwordless: Iterable[str], suspended: dict[str, int]
) -> Account | None:
    """An account from the admin API's answer (the list's, or one user's), or None if the
    answer is not one guardbot can read."""
    user_id = entry.get("name")
    if not isinstance(user_id, str):
        return None
    active = last_active(entry)
    if active is None:
        return None
    return Account(
        user_id=user_id,
        is_guest=bool(entry.get("is_guest")),
        admin=bool(entry.get("admin")),
        deactivated=bool(entry.get("deactivated")),
        last_active=active,
        named_guest=user_id in passwordless,
        suspended_at=suspended.get(user_id),
    )


class IdleAccounts:
    def __init__(
        self,
        *,
        hs: Homeserver,
        rules: ExpiryRules,
        inbox: InboxStore,
        named_guests: NamedGuestStore,
        suspensions: SuspensionStore,
        clock: Clock,
        inbox_wakeup: Wakeup,
        every: float,
    ) -> None:
        self.hs = hs
        self.rules = rules
        self.inbox = inbox
        self.named_guests = named_guests
        self.suspensions = suspensions
        self.clock = clock
        self.inbox_wakeup = inbox_wakeup
        self.every = every

    async def accounts(self) -> list[Account]:
        """Every account the rules may apply to (guests and passwordless named guests)."""
        passwordless = set(await self.named_guests.passwordless())
        suspended = await self.suspensions.all()
        found: list[Account] = []
        start: int | None = 0
        while start is not None:
            page, start = await self.hs.users_page(start, PAGE)
            for entry in page:
                account = account_of(entry, passwordless=passwordless, suspended=suspended)
                if account is not None and next_step(account, self.rules) is not None:
                    found.append(account)
        return found

    async def _with_devices(self, account: Account, now: int) -> Account:
        """A named guest not yet due as one is due as a guest if no device is left: only
        then is the homeserver asked."""
        if not account.named_guest or account.suspended_at is not None:
            return account
        if due(account, self.rules, now) is not None:
            return account
        if account.last_active + self.rules.guests_idle > now:
            return account
        if await self.hs.device_count(account.user_id):
            return account
        return replace(account, has_device=False)

    async def step(self) -> float:
        """One pass; seconds until the next."""
        if not self.rules.enabled:
            return self.every
        now = self.clock.now_ms()
        observations = []
        counts = {Step.SUSPEND: 0, Step.DEACTIVATE: 0}
        for account in await self.accounts():
            account = await self._with_devices(account, now)
            step = due(account, self.rules, now)
            if step is None:
                continue
            counts[step] += 1
            observations.append(
                AccountIdle(
                    account.user_id, step.value, account.last_active, account.suspended_at, now
                )
            )
        for step, count in counts.items():
            metrics.EXPIRY_DUE.labels(step.value).set(count)
        metrics.NAMED_GUESTS.labels("suspended").set(len(await self.suspensions.all()))
        if observations:
            await self.inbox.add(observations, now)
            self.inbox_wakeup.set()
            log.info("Expiry: %d accounts have a step due", len(observations))
        return self.every

    async def upcoming(self, limit: int = 20) -> tuple[int, list[Upcoming]]:
        """For `!guardbot expiry`: how many accounts the rules apply to, and the next steps."""
        now = self.clock.now_ms()
        steps = []
        accounts = await self.accounts()
        for account in accounts:
            account = await self._with_devices(account, now)
            step = next_step(account, self.rules)
            if step is not None:
                steps.append(Upcoming(account.user_id, step[0], step[1]))
        steps.sort(key=lambda u: (u.at, u.user_id))
        return len(accounts), steps[:limit]
