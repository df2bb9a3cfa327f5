"""A named guest's account: its status, and setting its password (the API and the claim page).

The password change goes through the homeserver's own /account/password, authorised with the
derived password by user-interactive auth, so the homeserver applies its password policy and
the user's devices stay logged in.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from guardbot.core.clock import Clock
from guardbot.core.observations import Observation, PasswordFound, PasswordSet
from guardbot.db.named_guest_store import UNCONFIRMED, NamedGuestRow, NamedGuestStore
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.named_guests.passwords import KeyRing, Probe, UnknownKey, probe
from guardbot.named_guests.weak_passwords import weakness

log = logging.getLogger(__name__)

# How stale the status endpoint's "password_set" may be before it logs in to check again: a
# user who set a password in their own app should see the banner go away soon.
STATUS_RECHECK_MS = 60_000
# An account counts as made by guardbot's registration if it was created from its first step
# (less this much clock difference) to its last step plus the longest a step takes.
CLOCK_SLACK_MS = 5_000
STEP_MAX_MS = 60_000
# Without admin rights, a cut-off registration is checked by a login only this soon after its
# last step, when nobody else can have taken the name in between.
LOGIN_CHECK_WITHIN_MS = 20 * 60 * 1000


@dataclass
class AccountError(Exception):
    """A refusal for the user, as Matrix error JSON."""

    status: int
    errcode: str
    error: str


class UserLocks:
    """One lock per user, so a reminder is never sent while that user's password changes."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def __call__(self, user_id: str) -> asyncio.Lock:
        lock = self._locks.get(user_id)
        if lock is None:
            lock = self._locks[user_id] = asyncio.Lock()
        return lock


class Accounts:
    def __init__(
        self,
        client: Homeserver,
        store: NamedGuestStore,
        keys: KeyRing,
        locks: UserLocks,
        clock: Clock,
        min_password_length: int = 10,
        is_admin: Callable[[], bool] = lambda: False,
        first_after_ms: int = 3_600_000,
        on_observed: Callable[[], None] = lambda: None,
    ) -> None:
        self.first_after_ms = first_after_ms  # an account found again is reminded as if new
        self.on_observed = on_observed  # wakes the evaluator: an observation is in the inbox
        self.clock = clock
        self.min_password_length = min_password_length
        self.is_admin = is_admin  # guardbot's admin rights, as they are now
        self.client = client
        self.store = store
        self.keys = keys
        self.locks = locks

    async def probe(self, user_id: str, key_id: str) -> Probe:
        """Does the derived password still work? Without a login when guardbot is an admin,
        so the checks of many named guests do not use up the homeserver's login limit."""
        password = self.keys.password(user_id, key_id)
        return await probe(self.client, user_id, password, admin=self.is_admin())

    async def resolve_unconfirmed(self, row: NamedGuestRow) -> bool:
        """A registration guardbot did not see finish: is the account one of ours? True if it
        is (it becomes active). Never by trying the derived password on an account someone
        else may own: that is a failed login on their account, and Synapse locks accounts
        after a few. As a server admin, the account must have been created between the first
        and the last registration step guardbot sent for it; without admin rights, only a
        login can tell, and only while the last step is recent."""
        user_id = row.user_id
        if not self.keys.knows(row.key_id):
            await self.store.forget(user_id)
            return False
        now = self.clock.now_ms()
        last_step = row.attempted_at or row.created_at
        if self.is_admin():
            info = await self.client.admin_user(user_id)
            created = info.get("creation_ts") if info else None
            ours = isinstance(created, int) and (
                row.created_at - CLOCK_SLACK_MS <= created * 1000 <= last_step + STEP_MAX_MS
            )
        elif not await self.client.user_exists(user_id):
            ours = False
        elif now - last_step > LOGIN_CHECK_WITHIN_MS:
            log.warning(
                "Cannot tell whether %s is the named guest whose registration was cut off"
                " without admin rights (only a login could, on what may be someone else's"
                " account); not reminding it",
                user_id,
            )
            ours = False
        else:
            ours = await self.probe(user_id, row.key_id) is Probe.WORKS
        if not ours:
            await self.store.forget(user_id)
            return False
        await self.store.activate(user_id, max(now, row.created_at + self.first_after_ms), now)
        log.info("Registration of %s had finished after all; reminders start", user_id)
        return True

    async def status(self, user_id: str, is_guest: bool = False) -> dict[str, Any]:
        row = None if is_guest else await self.store.get(user_id)
        if row is not None and row.state == UNCONFIRMED:
            row = await self.store.get(user_id) if await self.resolve_unconfirmed(row) else None
        if row is None:
            return {
                "user_id": user_id,
                "pwlu": False,
                "password_set": not is_guest,
                "nags_sent": 0,
                "next_nag_at": None,
            }
        if not row.password_set and (row.checked_at or 0) < self.clock.now_ms() - STATUS_RECHECK_MS:
            row = await self._recheck(row)
        return {
            "user_id": user_id,
            "pwlu": True,
            "password_set": row.password_set,
            "nags_sent": row.nags_sent,
            "next_nag_at": row.next_nag_at,
        }

    async def _recheck(self, row: NamedGuestRow) -> NamedGuestRow:
        """Has the user set a password some other way? Only a login can tell."""
        if not self.keys.knows(row.key_id):
            return row
        async with self.locks(row.user_id):
            try:
                result = await self.probe(row.user_id, row.key_id)
            except HomeserverError as e:
                log.info("Could not check %s's password now: %s", row.user_id, e)
                return row
            now = self.clock.now_ms()
            await self.store.checked(row.user_id, now)
            if result is Probe.REFUSED:
                # They are logged in (they asked with their token), so not deactivated.
                await self._observed(PasswordFound(row.user_id, False, now))
                log.info("%s has set a password outside guardbot; no more reminders", row.user_id)
                return replace(row, password_set=True)  # as it is being decided
        return await self.store.get(row.user_id) or row

    async def _observed(self, obs: Observation) -> None:
        await self.store.inbox.add([obs], self.clock.now_ms())
        self.on_observed()

    async def set_password(
        self, user_id: str, new_password: str, token: str | None, client: str | None = None
    ) -> None:
        """Set the user's own password. `token` is theirs (API); without one (claim page)
        guardbot logs in with the derived password for the change and logs out after, on
        behalf of `client` (the page's visitor: the homeserver's login limit counts them).
        guardbot's own minimum comes first; the homeserver's password policy applies on top."""
        weak = weakness(new_password, user_id, self.min_password_length)
        if weak is not None:
            raise AccountError(400, "M_WEAK_PASSWORD", weak)
        row = await self.store.get(user_id)
        if row is not None and row.state == UNCONFIRMED and await self.resolve_unconfirmed(row):
            row = await self.store.get(user_id)
        if row is None or row.state == UNCONFIRMED:
            raise AccountError(
                403, "M_FORBIDDEN", "Not a named guest: change the password in your Matrix app"
            )
        if row.password_set:
            raise AccountError(403, "M_FORBIDDEN", "A password is already set for this account")
        try:
            old = self.keys.password(user_id, row.key_id)
        except UnknownKey:
            log.warning(
                "%s's password came from a secret that is no longer in pwlu.secret or"
                " pwlu.previous_secrets; cannot change it",
                user_id,
            )
            raise AccountError(500, "M_UNKNOWN", "guardbot cannot authorise this change") from None
        async with self.locks(user_id):
            own_login = token is None
            try:
                if token is None:
                    # As for the reminders' checks: an admin token spends no login allowance;
                    # the change itself still proves the derived password (its auth step).
                    if self.is_admin():
                        token = await self.client.admin_login_as(user_id)
                    else:
                        token = await self.client.login(user_id, old, on_behalf_of=client)
                await self.client.change_password(token, user_id, old, new_password)
            except HomeserverError as e:
                if e.status in (401, 403) and e.errcode == "M_FORBIDDEN":
                    await self._derived_refused(user_id)
                raise
            finally:
                if own_login and token:
                    await self._logout(user_id, token)
            # Whoever holds the account's token or a reminder's link may set it: the user hears
            # of every change (decided from PasswordSet), so one they did not make is seen.
            how = "on the page a reminder linked to" if own_login else "by an app signed in as you"
            now = self.clock.now_ms()
            told = PasswordSet(user_id, how, now)
            await self.store.finish(user_id, "password set", now, password_set=True, then=told)
            self.on_observed()
        log.info("%s set a password; no more reminders", user_id)

    async def _derived_refused(self, user_id: str) -> None:
        """The derived password no longer works: the user set one elsewhere, or (a login
        refuses both alike) the account was deactivated."""
        deactivated = bool(await self.client.deactivated(user_id))
        await self._observed(PasswordFound(user_id, deactivated, self.clock.now_ms()))
        if deactivated:
            raise AccountError(403, "M_USER_DEACTIVATED", "This account has been deactivated")
        raise AccountError(403, "M_FORBIDDEN", "A password is already set for this account")

    async def _logout(self, user_id: str, token: str) -> None:
        try:
            await self.client.logout(token)
        except HomeserverError as e:
            log.warning("Could not log out guardbot's session for %s: %s", user_id, e)
