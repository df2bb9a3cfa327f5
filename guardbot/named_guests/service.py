"""Named guests, put together from config: what app.py builds, plugs in and starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from mautrix.util.async_db import Database

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.config import Config, parse_duration
from guardbot.core.actions import CarryOver, MarkNamedGuest, Remind, TellPasswordSet
from guardbot.core.clock import Clock
from guardbot.core.decision import Record, ReminderCounted
from guardbot.core.reminders import ReminderRules
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.accounts import Accounts, UserLocks
from guardbot.named_guests.admin_commands import NamedGuestAdmin
from guardbot.named_guests.api import NamedGuestAPI
from guardbot.named_guests.carrier import NamedGuestCarrier, ReminderSettings
from guardbot.named_guests.claim import ClaimPage
from guardbot.named_guests.decider import NamedGuestDecider
from guardbot.named_guests.passwords import KeyRing
from guardbot.named_guests.ratelimit import ClientAddress, RateLimiter
from guardbot.named_guests.signup import SignUp
from guardbot.named_guests.timer import ReminderTimer


def _ms(value: Any) -> int:
    return int(parse_duration(value) * 1000)


class NamedGuestService:
    def __init__(
        self,
        config: Config,
        hs: Homeserver,
        database: Database,
        conversations: Conversations,
        clock: Clock,
        inbox_wakeup: Wakeup,
        is_admin: Callable[[], bool],
    ) -> None:
        c = config
        self.store = NamedGuestStore(database)
        self.keys = KeyRing(c["pwlu.secret"], c["pwlu.previous_secrets"] or [])
        locks = UserLocks()
        settings = ReminderSettings(
            first_after_ms=_ms(c["pwlu.nag.first_after"]),
            every_ms=_ms(c["pwlu.nag.every"]),
            max=int(c["pwlu.nag.max"]),
            template=c["pwlu.nag.template"],
            html_template=c["pwlu.nag.html_template"],
            public_url=c["pwlu.public_url"],
            claim_ttl_ms=_ms(c["pwlu.claim_token_ttl"]),
            suspend_after_ms=_ms(c["expiry.named_guests_idle"]) if c["expiry.enabled"] else None,
            user_type=c["pwlu.user_type"] or None,
        )
        self.accounts = Accounts(
            hs,
            self.store,
            self.keys,
            locks,
            clock,
            int(c["pwlu.min_password_length"]),
            is_admin=is_admin,
            first_after_ms=settings.first_after_ms,
            on_observed=inbox_wakeup.set,
        )
        self.carrier = NamedGuestCarrier(
            settings, hs, self.store, self.accounts, locks, conversations, clock
        )
        self.timer_wakeup = Wakeup()
        self.timer = ReminderTimer(
            self.store, self.accounts, inbox_wakeup, clock, self.timer_wakeup
        )

        def registered() -> None:
            self.timer_wakeup.set()  # its first reminder may fall due before the timer looks
            inbox_wakeup.set()  # its carry-over is in the inbox

        self.sign_up = sign_up = SignUp(
            hs,
            self.store,
            self.keys,
            c["homeserver.domain"],
            settings.first_after_ms,
            registered,
            self.carrier,
            clock,
        )
        address = ClientAddress(c["pwlu.trusted_proxies"] or [])
        per_second, burst = c["pwlu.rate_limit.per_second"], c["pwlu.rate_limit.burst_count"]
        self.api = NamedGuestAPI(
            hs, sign_up, self.accounts, RateLimiter(per_second, burst, clock.monotonic), address
        )
        self.claim = ClaimPage(
            self.store,
            self.accounts,
            self.keys.subkey("claim-csrf"),
            settings.public_url,
            RateLimiter(per_second, burst, clock.monotonic),
            address,
            clock,
        )
        self.admin = NamedGuestAdmin(self.store)
        rules = ReminderRules(
            every_ms=settings.every_ms, most=settings.max, user_type=c["pwlu.user_type"] or None
        )
        self.decider = NamedGuestDecider(self.store, hs, conversations, self.keys, rules)
        # What the executor carries out for named guests, here.
        kinds = (Remind, TellPasswordSet, CarryOver, MarkNamedGuest)
        self.carriers = {kind: self.carrier for kind in kinds}

    def remember(self, records: Iterable[Record]) -> None:
        """Told what each stored decision recorded: a reminder counted schedules the next,
        which may fall due before the timer's next look."""
        if any(isinstance(r, ReminderCounted) for r in records):
            self.timer_wakeup.set()

    def add_routes(self, app: web.Application) -> None:
        self.api.add_routes(app)
        self.claim.add_routes(app)

    async def load(self) -> None:
        """At start, before transactions flow: the DMs are conversations."""
        await self.carrier.load()

    async def count(self) -> float:
        """The named guests by state, for the metrics; seconds until the next count."""
        for state, n in (await self.store.counts()).items():
            metrics.NAMED_GUESTS.labels(state).set(n)
        return 30.0
