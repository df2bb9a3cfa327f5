"""Reminders ("nags") by DM until a named guest sets a password, and what they answer.

Each nag: check that the derived password still logs in (if not, the user set their own, or the
account is gone: stop for good); make sure the DM exists (created once, reused, the user
invited back at most once after leaving); record "nag n is going out" with its claim link;
send it with a transaction ID made from (user, n), so a resend after a crash is dropped by the
homeserver; then count it. A send cut off by a crash is looked for in the DM first, because the
homeserver only remembers transaction IDs for about half an hour.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.nag_text import render
from guardbot.core.reminders import ALL_SENT, after_a_leave, next_reminder
from guardbot.db.named_guests import ACTIVE, UNCONFIRMED, PwluRow, PwluStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.pwlu.accounts import Accounts, UserLocks
from guardbot.pwlu.passwords import KeyRing, Probe
from guardbot.pwlu.tokens import new_claim_token

log = logging.getLogger(__name__)

NAG_MARK = "dev.guardbot.pwlu_nag"  # in each nag's content: which nag it is
DM_MARK = "dev.guardbot.pwlu_dm"  # in the DM's create event: whose DM it is
MAX_BACKOFF_MS = 3_600_000
# Reminders due together go out together: each costs the homeserver a few calls (a password
# check, a displayname, the message), and one after another 1,000 took minutes. At most this
# many at a time, from batches of BATCH due rows.
CONCURRENT = 16
BATCH = 64
# After M_LIMIT_EXCEEDED, reminders go one at a time for this long after the named wait.
RATE_LIMIT_CAUTION_MS = 30_000


@dataclass(frozen=True)
class NagSettings:
    first_after_ms: int
    every_ms: int
    max: int
    template: str
    html_template: str
    public_url: str
    claim_ttl_ms: int


def _user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:24]


def nag_txn_id(user_id: str, n: int) -> str:
    return f"pwlu-nag-{_user_hash(user_id)}-{n}"


class Nagger:
    def __init__(
        self,
        settings: NagSettings,
        client: Homeserver,
        store: PwluStore,
        keys: KeyRing,
        accounts: Accounts,
        locks: UserLocks,
        conversations: Conversations,
        clock: Clock,
        wakeup: Wakeup,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.keys = keys
        self.accounts = accounts
        self.locks = locks
        self.conversations = conversations
        self.clock = clock
        self.wakeup = wakeup
        self._pruned_at = 0
        # Until when (ms) the homeserver asked guardbot to leave it alone (a 429 met by a
        # reminder's call): every reminder waits, not only the one refused.
        self.limited_until = 0

    async def load(self) -> None:
        for room_id in await self.store.dm_rooms():
            self.conversations.open(room_id)

    # -- the schedule ----------------------------------------------------------------------
    async def step(self) -> float:
        """Every nag due now, then how long until the next (at most a minute). (Reminders
        that waited for the homeserver are made due by the decision on its coming back.)"""
        while await self.run_once():
            pass
        now = self.clock.now_ms()
        if now - self._pruned_at > 3_600_000:
            await self.store.prune_claims(now)
            self._pruned_at = now
        next_at = await self.store.next_due_at()
        if next_at is not None and next_at <= now and self.limited_until > now:
            next_at = self.limited_until  # due, but held back by the homeserver's limit
        return 60.0 if next_at is None else min(60.0, max(0.05, (next_at - now) / 1000))

    async def run_once(self) -> int:
        """Handle the nags due now, up to CONCURRENT of them at a time (each one's steps stay
        in order, and one user's never overlap: their lock); how many were handled. A 429
        met by one holds the rest back until the wait the homeserver named is over: its
        limits are on guardbot as one user, so they would all meet it."""
        now = self.clock.now_ms()
        if now < self.limited_until:
            return 0
        # Just after a limit's wait: one at a time for a while, so it can refill.
        cautious = now < self.limited_until + RATE_LIMIT_CAUTION_MS
        rows = await self.store.due(now, limit=1 if cautious else BATCH)
        gate = asyncio.Semaphore(CONCURRENT)
        handled = await asyncio.gather(*(self._one(gate, row) for row in rows))
        return sum(handled)

    async def _one(self, gate: asyncio.Semaphore, row: PwluRow) -> int:
        async with gate, self.locks(row.user_id):
            if self.clock.now_ms() < self.limited_until:
                return 0  # another met the homeserver's limit meanwhile: this one waits too
            fresh = await self.store.get(row.user_id)  # may have changed while waiting
            if (
                fresh is None
                or fresh.next_nag_at is None
                or fresh.next_nag_at > self.clock.now_ms()
            ):
                return 0
            await self._handle(fresh)
            return 1

    async def _handle(self, row: PwluRow) -> None:
        try:
            await self._nag(row)
            after = await self.store.get(row.user_id)
            if after is not None and (after.state, after.nags_sent, after.next_nag_at) == (
                row.state,
                row.nags_sent,
                row.next_nag_at,
            ):
                # Nothing moved (a bug, or a race lost): do not spin on a row that stays due.
                log.warning("Reminder for %s made no progress; trying again later", row.user_id)
                await self.store.defer(row.user_id, self.clock.now_ms() + 60_000)
        except HomeserverError as e:
            delay = e.retry_after_ms if e.status == 429 and e.retry_after_ms else None
            delay = delay or min(MAX_BACKOFF_MS, 2000 * 2 ** min(row.attempts, 20))
            if e.status == 429:
                self.limited_until = max(self.limited_until, self.clock.now_ms() + delay)
            log.warning("Reminder for %s deferred %.0fs: %s", row.user_id, delay / 1000, e)
            at = self.clock.now_ms() + delay
            waits_for_homeserver = e.transient and e.status != 429
            await self.store.defer(row.user_id, at, for_homeserver=waits_for_homeserver)
        except Exception:
            log.exception("Reminder for %s failed; deferring it", row.user_id)
            await self.store.defer(row.user_id, self.clock.now_ms() + MAX_BACKOFF_MS)

    async def _nag(self, row: PwluRow) -> None:
        user_id = row.user_id
        if row.state == UNCONFIRMED:
            await self.accounts.resolve_unconfirmed(row)
            return  # an account found again is due at once: the next pass nags it
        if row.state != ACTIVE:  # finished rows are never due; repair one that is
            await self.store.unschedule(user_id)
            return
        n = next_reminder(row.nags_sent, row.sending, self.settings.max)
        if n is None:
            await self.store.finish(user_id, ALL_SENT, self.clock.now_ms())
            return
        if not self.keys.knows(row.key_id):
            log.warning("No secret for %s's password (key %s)", user_id, row.key_id)
            await self.store.finish(user_id, "secret no longer configured", self.clock.now_ms())
            return
        if await self.accounts.probe(user_id, row.key_id) is Probe.REFUSED:
            deactivated = await self.client.deactivated(user_id)
            reason = "deactivated" if deactivated else "password set elsewhere"
            await self.store.finish(
                user_id, reason, self.clock.now_ms(), password_set=not deactivated
            )
            log.info("No reminder for %s: %s", user_id, reason)
            return
        await self.store.checked(user_id, self.clock.now_ms())
        room_id = await self._dm(row)
        if room_id is None:
            return
        if row.sending is not None and await self._already_sent(room_id, n):
            log.info("Reminder %d for %s had gone out before a restart", n, user_id)
        else:
            await self._send(row, room_id, n)
            metrics.NAGS_SENT.inc()
        await self.store.sent(user_id, n, self._next_at(row, n), self.clock.now_ms())

    def _next_at(self, row: PwluRow, n: int) -> int | None:
        """Counted from when this nag was due, so the time a send takes does not add up from
        one nag to the next; after downtime, a full interval from now (no burst)."""
        if n >= self.settings.max:
            return None
        now = self.clock.now_ms()
        due = row.next_nag_at if row.next_nag_at is not None else now
        at = due + self.settings.every_ms
        return at if at > now else now + self.settings.every_ms

    async def _send(self, row: PwluRow, room_id: str, n: int) -> None:
        s = self.settings
        token, token_hash = new_claim_token()
        now = self.clock.now_ms()
        if row.sending is None:
            if not await self.store.start_sending(
                row.user_id, n, token_hash, now, now + s.claim_ttl_ms
            ):
                return
        else:  # resending after a crash: the old link's token is gone with the process
            await self.store.add_claim(row.user_id, token_hash, now, now + s.claim_ttl_ms)
        name = await self.client.displayname(row.user_id) or row.user_id[1:].split(":", 1)[0]
        values = {
            "name": name,
            "user_id": row.user_id,
            "link": f"{s.public_url.rstrip('/')}/_guardbot/claim/{token}",
            "nag": n,
            "max": s.max,
        }
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": render(s.template, values),
            "format": "org.matrix.custom.html",
            "formatted_body": render(s.html_template, values, as_html=True),
            NAG_MARK: {"n": n},
        }
        await self.client.send(room_id, content, nag_txn_id(row.user_id, n))
        log.info("Sent reminder %d of %d to %s", n, s.max, row.user_id)

    async def _already_sent(self, room_id: str, n: int) -> bool:
        for event in await self.client.recent_events(room_id):
            content = event.get("content")
            mark = content.get(NAG_MARK) if isinstance(content, dict) else None
            if event.get("sender") == self.client.bot_user_id and isinstance(mark, dict):
                if mark.get("n") == n:
                    return True
        return False

    async def tell_password_set(self, user_id: str, how: str) -> None:
        """A notice in the user's DM (made now if it never was) after a password is set."""
        async with self.locks(user_id):
            row = await self.store.get(user_id)
            if row is None:
                return
            room_id = row.dm_room_id
            if room_id is None:
                await self.store.dm_creating(user_id)  # a crash here: the next _dm finds it
                room_id = await self.client.create_dm(user_id, DM_MARK)
                self.conversations.open(room_id)
                await self.store.set_dm(user_id, room_id)
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.clock.now_ms() / 1000))
        body = (
            f"The password of {user_id} was set {how}, at {when}. If that was not you, sign in"
            " with your Matrix app, change your password there, and tell this server's admin."
        )
        content = {"msgtype": "m.notice", "body": body}
        txn = f"pwlu-password-set-{_user_hash(user_id)}-{self.clock.now_ms()}"
        await self.client.send(room_id, content, txn)
        log.info("Told %s that their password was set", user_id)

    # -- the DM ----------------------------------------------------------------------------
    async def _dm(self, row: PwluRow) -> str | None:
        """The user's DM with guardbot: made once, reused; None if nagging ended here."""
        user_id = row.user_id
        if row.dm_room_id:
            if row.dm_left:
                ended = after_a_leave(row.dm_reinvited)
                if ended:
                    await self.store.finish(user_id, ended, self.clock.now_ms())
                    return None
                await self._invite_back(row.dm_room_id, user_id)
                await self.store.reinvited(user_id)
            return row.dm_room_id
        room_id = await self._find_dm(user_id) if row.dm_creating else None
        if room_id is None:
            await self.store.dm_creating(user_id)
            room_id = await self.client.create_dm(user_id, DM_MARK)
        self.conversations.open(room_id)
        await self.store.set_dm(user_id, room_id)
        return room_id

    async def _invite_back(self, room_id: str, user_id: str) -> None:
        try:
            await self.client.invite(room_id, user_id)
        except HomeserverError as e:
            if e.status != 403:  # 403: already there, or banned; the nag goes there anyway
                raise
            log.info("Could not invite %s back to their DM: %s", user_id, e)

    async def _find_dm(self, user_id: str) -> str | None:
        """A DM made just before a crash, before its room ID was stored (rare: only then)."""
        for room_id in await self.client.bot_rooms():
            try:
                create = await self.client.create_content(room_id)
            except HomeserverError:
                continue
            if create.get(DM_MARK) == user_id:
                return room_id
        return None
