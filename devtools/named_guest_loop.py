"""The named guests' part wired as PwluService wires it (store, accounts, carrier, decider,
timer) onto the guard loop, for tests and benchmarks that drive reminders pass by pass:
timer → evaluator → executor, until nothing is due."""

from __future__ import annotations

from dataclasses import dataclass

from devtools.guard_loop import GuardLoop, guard_loop
from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.actions import PERSONAL
from guardbot.core.clock import Clock
from guardbot.core.reminders import ReminderRules
from guardbot.db.named_guests import PwluStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver
from guardbot.pwlu.accounts import Accounts, UserLocks
from guardbot.pwlu.carrier import NamedGuestCarrier, ReminderSettings
from guardbot.pwlu.decider import NamedGuestDecider
from guardbot.pwlu.passwords import KeyRing
from guardbot.pwlu.timer import ReminderTimer

DAY_MS = 86_400_000


def settings(every_ms: int = DAY_MS, most: int = 3) -> ReminderSettings:
    return ReminderSettings(
        first_after_ms=0,
        every_ms=every_ms,
        max=most,
        template="Hi {name}, set a password: {link}",
        html_template="Hi {name}, <a href='{link}'>set a password</a>",
        public_url="https://guardbot.example.org",
        claim_ttl_ms=DAY_MS,
    )


@dataclass
class NamedGuestLoop:
    guard: GuardLoop
    timer: ReminderTimer
    store: PwluStore
    carrier: NamedGuestCarrier
    keys: KeyRing
    clock: Clock

    async def run_until_idle(self, passes: int = 1000) -> None:
        """The timer's look, then evaluator and executor, until nothing more falls due."""
        for _ in range(passes):
            await self.timer.step()
            await self.guard.run_until_idle(passes=10_000)
            if not await self.store.due(self.clock.now_ms(), limit=1):
                return
        raise AssertionError(f"reminders still due after {passes} passes")

    async def name(self, *users: str) -> None:
        """Named guests whose first reminder is due now."""
        for user in users:
            now = self.clock.now_ms()
            await self.store.confirm(user, self.keys.current, now, now)


async def named_guest_loop(
    database: db.Database,
    hs: Homeserver,
    keys: KeyRing,
    reminders: ReminderSettings,
    *,
    clock: Clock | None = None,
    admin: bool = False,
) -> NamedGuestLoop:
    clock = clock or Clock()
    store = PwluStore(database)
    locks = UserLocks()
    conversations = Conversations()
    accounts = Accounts(hs, store, keys, locks, clock, is_admin=lambda: admin)
    carrier = NamedGuestCarrier(reminders, hs, store, accounts, locks, conversations, clock)
    rules = ReminderRules(every_ms=reminders.every_ms, most=reminders.max)
    decider = NamedGuestDecider(store, hs, conversations, keys, rules)
    guard = await guard_loop(
        database,
        hs,
        clock=clock,
        admin=admin,
        named_guests=decider,
        carriers=dict.fromkeys(PERSONAL, carrier),
    )
    timer = ReminderTimer(store, accounts, guard.inbox_wakeup, clock, Wakeup())
    return NamedGuestLoop(guard, timer, store, carrier, keys, clock)
