"""guardbot with named guests on (guardbot/wiring.py, as the app wires it), for tests and
benchmarks that drive reminders pass by pass: timer → evaluator → executor, until nothing is
due."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devtools.guard_loop import GuardLoop, guard_loop
from guardbot import db
from guardbot.core.clock import Clock
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.carrier import NamedGuestCarrier
from guardbot.named_guests.passwords import KeyRing
from guardbot.named_guests.timer import ReminderTimer

DAY_MS = 86_400_000


@dataclass
class NamedGuestLoop:
    guard: GuardLoop
    keys: KeyRing

    @property
    def store(self) -> NamedGuestStore:
        assert self.guard.parts.named_guests is not None
        return self.guard.parts.named_guests.store

    @property
    def timer(self) -> ReminderTimer:
        assert self.guard.parts.named_guests is not None
        return self.guard.parts.named_guests.timer

    @property
    def carrier(self) -> NamedGuestCarrier:
        assert self.guard.parts.named_guests is not None
        return self.guard.parts.named_guests.carrier

    @property
    def clock(self) -> Clock:
        return self.guard.parts.clock

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
    hs: Homeserver | str,
    secret: str,
    *,
    every: str = "1d",
    template: str = "Hi {name}, set a password: {link}",
    clock: Clock | None = None,
    admin: bool = False,
    config: dict[str, Any] | None = None,
) -> NamedGuestLoop:
    """`config`: more keys over these (and the example's)."""
    values: dict[str, Any] = {
        "pwlu.enabled": True,
        "pwlu.secret": secret,
        "pwlu.public_url": "https://guardbot.example.org",
        "pwlu.claim_token_ttl": "1d",
        "pwlu.nag.first_after": "1s",  # unused: name() makes the first one due now
        "pwlu.nag.every": every,
        "pwlu.nag.max": 3,
        "pwlu.nag.template": template,
        "pwlu.nag.html_template": template,
    }
    values.update(config or {})
    guard = await guard_loop(database, hs, clock=clock, admin=admin, config=values)
    return NamedGuestLoop(guard, KeyRing(secret))
