"""Named guests, put together from config: what app.py builds, plugs in and starts."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web
from mautrix.util.async_db import Database

from guardbot.background import Wakeup
from guardbot.config import Config, parse_duration
from guardbot.core.clock import Clock
from guardbot.core.decision import HomeserverAnswers, Record
from guardbot.db.named_guests import PwluStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver
from guardbot.pwlu.accounts import Accounts, UserLocks
from guardbot.pwlu.admin_commands import PwluAdmin
from guardbot.pwlu.api import PwluAPI
from guardbot.pwlu.claim import ClaimPage
from guardbot.pwlu.nags import Nagger, NagSettings
from guardbot.pwlu.passwords import KeyRing
from guardbot.pwlu.ratelimit import ClientAddress, RateLimiter
from guardbot.pwlu.replies import NagReplies
from guardbot.pwlu.signup import Registrar


def _ms(value: Any) -> int:
    return int(parse_duration(value) * 1000)


class PwluService:
    def __init__(
        self,
        config: Config,
        hs: Homeserver,
        database: Database,
        conversations: Conversations,
        clock: Clock,
        nag_wakeup: Wakeup,
        is_admin: Callable[[], bool],
    ) -> None:
        c = config
        self.store = PwluStore(database)
        self.keys = KeyRing(c["pwlu.secret"], c["pwlu.previous_secrets"] or [])
        locks = UserLocks()
        settings = NagSettings(
            first_after_ms=_ms(c["pwlu.nag.first_after"]),
            every_ms=_ms(c["pwlu.nag.every"]),
            max=int(c["pwlu.nag.max"]),
            template=c["pwlu.nag.template"],
            html_template=c["pwlu.nag.html_template"],
            public_url=c["pwlu.public_url"],
            claim_ttl_ms=_ms(c["pwlu.claim_token_ttl"]),
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
        )
        self.nagger = Nagger(
            settings,
            hs,
            self.store,
            self.keys,
            self.accounts,
            locks,
            conversations,
            clock,
            nag_wakeup,
        )
        self.accounts.on_password_set = self.nagger.tell_password_set
        self.registrar = registrar = Registrar(
            hs,
            self.store,
            self.keys,
            c["homeserver.domain"],
            settings.first_after_ms,
            nag_wakeup.set,
            clock,
        )
        address = ClientAddress(c["pwlu.trusted_proxies"] or [])
        per_second, burst = c["pwlu.rate_limit.per_second"], c["pwlu.rate_limit.burst_count"]
        self.api = PwluAPI(
            hs, registrar, self.accounts, RateLimiter(per_second, burst, clock.monotonic), address
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
        self.admin = PwluAdmin(self.store)
        self.replies = NagReplies(self.store, hs, conversations)

    def remember(self, records: Iterable[Record]) -> None:
        """Told what each stored decision recorded: reminders the homeserver's coming back made
        due go now, not at the nagger's next look."""
        if any(isinstance(r, HomeserverAnswers) for r in records):
            self.nagger.wakeup.set()

    def register(self, app: web.Application) -> None:
        self.api.register(app)
        self.claim.register(app)

    async def load(self) -> None:
        """At start, before transactions flow: the DMs are conversations."""
        await self.nagger.load()
