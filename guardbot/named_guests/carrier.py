"""What the executor does for a named guest: a reminder, the notice that their password was
set, and carrying a guest's rooms over to their new account.

The executor runs these as it runs kicks (queue, retry, 429 memory per kind, audit); here is
only what each does at the homeserver, after a last look at the named guest's row (under
their lock, so a reminder never crosses their password change).

A reminder: check that the derived password still works (if not, that finding goes back as
an observation, and nothing is sent); make sure the DM exists (made once, reused, the user
invited back once after leaving); store the reminder's claim link (the user's only one from
then on); send it with a transaction ID made from (user, n), so a resend after a crash is
dropped by the homeserver; and report it sent, as an observation that schedules the next. A
send cut off by a crash is looked for in the DM first, because the homeserver only remembers
transaction IDs for about half an hour.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from guardbot import metrics
from guardbot.core.actions import (
    ActionState,
    CarryOver,
    MarkNamedGuest,
    Outcome,
    Remind,
    TellPasswordSet,
)
from guardbot.core.clock import Clock
from guardbot.core.expiry_rules import last_active
from guardbot.core.observations import Observation, PasswordFound, ReminderWent
from guardbot.core.reminder_text import render
from guardbot.db import QueuedAction
from guardbot.db.named_guest_store import ACTIVE, NamedGuestRow, NamedGuestStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.named_guests.accounts import Accounts, UserLocks
from guardbot.named_guests.passwords import Probe
from guardbot.named_guests.tokens import new_claim_token

log = logging.getLogger(__name__)

REMINDER_MARK = "dev.guardbot.pwlu_nag"  # in each reminder's content: which one it is
DM_MARK = "dev.guardbot.pwlu_dm"  # in the DM's create event: whose DM it is


@dataclass(frozen=True)
class ReminderSettings:
    first_after_ms: int
    every_ms: int
    max: int
    template: str
    html_template: str
    public_url: str
    claim_ttl_ms: int
    # Expiry on: a passwordless named guest idle this long is suspended (the reminder says when).
    suspend_after_ms: int | None = None
    user_type: str | None = None  # pwlu.user_type


def _user_hash(user_id: str) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest()[:24]


def reminder_txn_id(user_id: str, n: int) -> str:
    return f"pwlu-nag-{_user_hash(user_id)}-{n}"


def _retried_by_the_executor(e: HomeserverError) -> bool:
    """Worth another try later: the homeserver failing, limiting, or not knowing guardbot's
    token for now. Anything else is its final word on this action."""
    return e.transient or e.status in (401, 429)


class NamedGuestCarrier:
    def __init__(
        self,
        settings: ReminderSettings,
        client: Homeserver,
        store: NamedGuestStore,
        accounts: Accounts,
        locks: UserLocks,
        conversations: Conversations,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.client = client
        self.store = store
        self.accounts = accounts
        self.keys = accounts.keys
        self.locks = locks
        self.conversations = conversations
        self.clock = clock
        # A new account's access token, handed over by its registration so its carry-over
        # needs no login: in memory only (a restart logs in instead).
        self._tokens: dict[str, str] = {}
        # Registrations waiting to tell their client which rooms came along.
        self._waiting: dict[str, asyncio.Future[tuple[list[str], list[str]]]] = {}

    async def load(self) -> None:
        """At start: each named guest's DM is a conversation (their replies are heard)."""
        for room_id in await self.store.dm_rooms():
            self.conversations.open(room_id)

    async def carry_out(self, queued: QueuedAction, found: list[Observation]) -> Outcome:
        match action := queued.action:
            case Remind():
                async with self.locks(action.user_id):
                    return await self._remind(action, found)
            case TellPasswordSet():
                async with self.locks(action.user_id):
                    return await self._tell_password_set(action)
            case CarryOver():
                return await self._carry_over(action)
            case MarkNamedGuest():
                return await self._mark(action)
        return Outcome(ActionState.FAILED, f"not a named guest's action: {type(action).__name__}")

    # -- a reminder ------------------------------------------------------------------------
    async def _remind(self, action: Remind, found: list[Observation]) -> Outcome:
        user_id, n = action.user_id, action.n
        row = await self.store.get(user_id)
        if row is None or row.state != ACTIVE or row.sending != n:
            return Outcome(ActionState.SKIPPED, f"reminder {n} is no longer due")
        now = self.clock.now_ms()
        if await self.accounts.probe(user_id, row.key_id) is Probe.REFUSED:
            deactivated = bool(await self.client.deactivated(user_id))
            found.append(PasswordFound(user_id, deactivated, now))
            why = "the account is deactivated" if deactivated else "they set their own password"
            return Outcome(ActionState.SKIPPED, f"no reminder {n}: {why}")
        await self.store.checked(user_id, now)
        went = ReminderWent(user_id, n, action.due_at, now)
        try:
            room_id, how = await self._dm(row, invite_back=True)
            if row.attempts and await self._already_sent(room_id, n):
                found.append(went)
                return Outcome(ActionState.DONE, f"reminder {n} had gone out before a restart")
            token, token_hash = new_claim_token()
            s = self.settings
            if (
                await self.store.sending_with(user_id, n, token_hash, now, now + s.claim_ttl_ms)
                is None
            ):
                return Outcome(ActionState.SKIPPED, f"reminder {n} is no longer due")
            await self._send(row, room_id, n, token)
        except HomeserverError as e:
            if _retried_by_the_executor(e):
                raise
            # Refused for good (the DM cannot be made, say): spent, so the next one still comes.
            found.append(ReminderWent(user_id, n, action.due_at, now, delivered=False))
            return Outcome(ActionState.FAILED, f"reminder {n} could not be sent: {e}")
        metrics.REMINDERS_SENT.inc()
        found.append(went)
        return Outcome(ActionState.DONE, f"reminder {n} of {self.settings.max} sent{how}")

    async def _send(self, row: NamedGuestRow, room_id: str, n: int, token: str) -> None:
        s = self.settings
        name = await self.client.displayname(row.user_id) or row.user_id[1:].split(":", 1)[0]
        values = {
            "name": name,
            "user_id": row.user_id,
            "link": f"{s.public_url.rstrip('/')}/_guardbot/claim/{token}",
            "nag": n,
            "max": s.max,
        }
        body, html = render(s.template, values), render(s.html_template, values, as_html=True)
        when = await self._suspended_on(row.user_id)
        if when:
            note = (
                f"Without a password, this account will be suspended on {when}"
                " unless it is used before then."
            )
            body, html = f"{body}\n\n{note}", f"{html}<p>{note}</p>"
        content: dict[str, Any] = {
            "msgtype": "m.notice",
            "body": body,
            "format": "org.matrix.custom.html",
            "formatted_body": html,
            REMINDER_MARK: {"n": n},
        }
        await self.client.send(room_id, content, reminder_txn_id(row.user_id, n))
        log.info("Sent reminder %d of %d to %s", n, s.max, row.user_id)

    async def _suspended_on(self, user_id: str) -> str | None:
        """The day expiry would suspend them (their last activity plus the idle time), when
        it is on and guardbot can see their activity."""
        if self.settings.suspend_after_ms is None:
            return None
        info = await self.client.admin_user(user_id) if self.accounts.is_admin() else None
        last = last_active(info) if info else None
        if last is None:
            return None
        at = (last + self.settings.suspend_after_ms) / 1000
        return time.strftime("%Y-%m-%d", time.gmtime(max(at, time.time())))

    async def _mark(self, action: MarkNamedGuest) -> Outcome:
        """The named guest's user_type, for admin tools: set while passwordless, cleared
        after; never over a type someone else gave the account."""
        user_id, wanted = action.user_id, action.user_type
        info = await self.client.admin_user(user_id)
        if info is None or info.get("deactivated"):
            return Outcome(ActionState.SKIPPED, f"{user_id} is gone")
        current = info.get("user_type")
        if wanted is not None:
            row = await self.store.get(user_id)
            if row is None or row.password_set:
                return Outcome(ActionState.SKIPPED, f"{user_id} has a password of their own")
            if current not in (None, wanted):
                return Outcome(ActionState.SKIPPED, f"{user_id} is of type {current} already")
        elif current is None:
            return Outcome(ActionState.SKIPPED, f"{user_id} has no user_type")
        elif current != self.settings.user_type:
            return Outcome(ActionState.SKIPPED, f"{user_id}'s type {current} is not guardbot's")
        if current == wanted:
            return Outcome(ActionState.DONE, f"{user_id} is of type {wanted} already")
        await self.client.set_user_type(user_id, wanted)
        return Outcome(ActionState.DONE, f"{user_id}'s user_type is now {wanted}")

    async def _already_sent(self, room_id: str, n: int) -> bool:
        for event in await self.client.recent_events(room_id):
            content = event.get("content")
            mark = content.get(REMINDER_MARK) if isinstance(content, dict) else None
            if event.get("sender") == self.client.bot_user_id and isinstance(mark, dict):
                if mark.get("n") == n:
                    return True
        return False

    # -- the DM ----------------------------------------------------------------------------
    async def _dm(self, row: NamedGuestRow, *, invite_back: bool) -> tuple[str, str]:
        """The user's DM with guardbot (made once, reused; invited back if they left and
        `invite_back`), and what was done for it, to be told in the outcome."""
        user_id = row.user_id
        if row.dm_room_id:
            if not (row.dm_left and invite_back):
                return row.dm_room_id, ""
            try:
                await self.client.invite(row.dm_room_id, user_id)
            except HomeserverError as e:
                if e.status != 403:  # 403: already there, or banned; it goes there anyway
                    raise
                log.info("Could not invite %s back to their DM: %s", user_id, e)
            await self.store.reinvited(user_id)
            return row.dm_room_id, ", invited back to the DM"
        room_id = await self._find_dm(user_id) if row.dm_creating else None
        if room_id is None:
            await self.store.dm_creating(user_id)  # a crash after this: _find_dm finds it
            room_id = await self.client.create_dm(user_id, DM_MARK)
        self.conversations.open(room_id)
        await self.store.set_dm(user_id, room_id)
        return room_id, ", in a new DM"

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

    # -- the notice after a password is set ------------------------------------------------
    async def _tell_password_set(self, action: TellPasswordSet) -> Outcome:
        user_id = action.user_id
        row = await self.store.get(user_id)
        if row is None:
            return Outcome(ActionState.SKIPPED, "no longer a named guest guardbot knows")
        set_at = int(action.cause)
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(set_at / 1000))
        body = (
            f"The password of {user_id} was set {action.how}, at {when}. If that was not you,"
            " sign in with your Matrix app, change your password there, and tell this server's"
            " admin."
        )
        try:
            room_id, _ = await self._dm(row, invite_back=False)
            # The same transaction ID on a retry: said once.
            txn = f"pwlu-password-set-{_user_hash(user_id)}-{set_at}"
            await self.client.send(room_id, {"msgtype": "m.notice", "body": body}, txn)
        except HomeserverError as e:
            if _retried_by_the_executor(e):
                raise
            return Outcome(ActionState.FAILED, f"could not tell them: {e}")
        log.info("Told %s that their password was set", user_id)
        return Outcome(ActionState.DONE, f"told {user_id} their password was set {action.how}")

    # -- a guest's rooms, carried over -----------------------------------------------------
    def expect_carry_over(
        self, user_id: str, access_token: str
    ) -> asyncio.Future[tuple[list[str], list[str]]]:
        """A registration hands over the new account's token and waits to hear which rooms
        came along (and which the new account could not enter)."""
        self._tokens[user_id] = access_token
        future = self._waiting[user_id] = asyncio.get_running_loop().create_future()
        return future

    def forget_carry_over(self, user_id: str) -> None:
        self._tokens.pop(user_id, None)
        self._waiting.pop(user_id, None)

    async def _carry_over(self, action: CarryOver) -> Outcome:
        """The new account joins each of the guest's rooms; the guest (as the appservice: its
        numeric ID is in guardbot's namespace) leaves each one the new account got into, and
        stays where it did not: it keeps what it could reach."""
        user_id, guest_id = action.user_id, action.guest_id
        rooms = await self.client.joined_rooms_of(guest_id)
        moved: list[str] = []
        if rooms:
            token = self._tokens.pop(user_id, None)
            own_login = token is None
            if own_login:  # after a restart: the registration's token is gone
                token = await self._login(user_id)
            try:
                moved = await self._move(rooms, token, guest_id)
            finally:
                if own_login:
                    await self._logout(user_id, token)
        kept = [r for r in rooms if r not in moved]
        self._tokens.pop(user_id, None)
        waiting = self._waiting.pop(user_id, None)
        if waiting is not None and not waiting.done():
            waiting.set_result((moved, kept))
        return Outcome(
            ActionState.DONE,
            f"{len(moved)} of {guest_id}'s rooms carried over to {user_id}, {len(kept)} kept",
        )

    async def _login(self, user_id: str) -> str:
        row = await self.store.get(user_id)
        if row is None:
            raise HomeserverError(404, "M_NOT_FOUND", f"{user_id} is no named guest", {})
        if self.accounts.is_admin():  # spends no login allowance
            return await self.client.admin_login_as(user_id)
        return await self.client.login(user_id, self.keys.password(user_id, row.key_id))

    async def _logout(self, user_id: str, token: str) -> None:
        try:
            await self.client.logout(token)
        except HomeserverError as e:
            log.warning("Could not log out guardbot's session for %s: %s", user_id, e)

    async def _move(self, rooms: list[str], token: str, guest_id: str) -> list[str]:
        moved: list[str] = []
        for room_id in rooms:
            try:
                await self.client.join_as(room_id, token)
            except HomeserverError as e:
                if _retried_by_the_executor(e):
                    raise
                log.info("Named guest could not join %s (%s); the guest stays there", room_id, e)
                continue
            moved.append(room_id)
            try:
                await self.client.leave_as_user(room_id, guest_id)
            except HomeserverError as e:
                if _retried_by_the_executor(e):
                    raise
                log.warning("The guest could not leave %s: %s", room_id, e)
        return moved
