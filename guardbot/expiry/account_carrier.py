"""Carries out an account's end, each step as the room carrier does a kick: gather the account
as the homeserver sees it now, confirm with the core's rule (`why_not_ended`), then act. A
named guest is also asked whether guardbot's derived password still works: one who set their
own is never touched (and that finding ends their reminders and lifts any suspension)."""

from __future__ import annotations

from guardbot.core.actions import (
    ActionState,
    Deactivate,
    Outcome,
    Suspend,
    Unsuspend,
)
from guardbot.core.clock import Clock
from guardbot.core.expiry_rules import Account, ExpiryRules, why_not_ended
from guardbot.core.observations import (
    AccountEnded,
    AccountSuspended,
    Observation,
    PasswordFound,
)
from guardbot.db import ActionStore, QueuedAction
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.db.suspension_store import SuspensionStore
from guardbot.expiry.idle_accounts import account_of
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.accounts import Accounts
from guardbot.named_guests.passwords import Probe

DONE, SKIPPED, DRY_RUN = ActionState.DONE, ActionState.SKIPPED, ActionState.DRY_RUN

ACCOUNT_ACTIONS = (Suspend, Deactivate, Unsuspend)


class AccountCarrier:
    def __init__(
        self,
        *,
        hs: Homeserver,
        rules: ExpiryRules,
        store: ActionStore,
        named_guests: NamedGuestStore,
        suspensions: SuspensionStore,
        accounts: Accounts | None,
        clock: Clock,
    ) -> None:
        self.hs = hs
        self.rules = rules
        self.store = store
        self.named_guests = named_guests
        self.suspensions = suspensions
        self.accounts = accounts  # the named guests' password check, when they are on
        self.clock = clock

    async def carry_out(self, queued: QueuedAction, found: list[Observation]) -> Outcome:
        action = queued.action
        if isinstance(action, Unsuspend):
            return await self._lift(action)
        if not isinstance(action, (Suspend, Deactivate)):
            return Outcome(ActionState.FAILED, f"not an account's step: {type(action).__name__}")
        now = self.clock.now_ms()
        user_id = action.user_id
        # Gather.
        info = await self.hs.admin_user(user_id)
        if info is None:
            return Outcome(SKIPPED, f"{user_id} does not exist")
        if isinstance(action, Deactivate) and info.get("deactivated"):
            found.append(AccountEnded(user_id, now))
            if queued.started_at is not None:
                return Outcome(DONE, f"deactivated {user_id} (before a restart)")
            return Outcome(SKIPPED, f"{user_id} was deactivated already")
        account = await self._account(info)
        if account is None:
            return Outcome(SKIPPED, f"cannot read {user_id}'s account")
        # Confirm.
        why_not = why_not_ended(account, action, self.rules, now)
        if why_not:
            return Outcome(SKIPPED, f"{user_id}: {why_not}")
        if account.named_guest and self.accounts is None:
            # Named guests are off: nothing can prove they still have no password of their own.
            return Outcome(SKIPPED, f"{user_id}: cannot check their password (pwlu is off)")
        if account.named_guest and await self._own_password(user_id):
            found.append(PasswordFound(user_id, False, now))
            return Outcome(SKIPPED, f"{user_id} has a password of their own")
        what = "deactivate" if isinstance(action, Deactivate) else "suspend"
        if self.rules.dry_run:
            return Outcome(DRY_RUN, f"dry-run: would {what} {user_id}")
        # Act.
        if isinstance(action, Suspend):
            if not info.get("suspended"):
                await self.hs.suspend(user_id, True)
            found.append(AccountSuspended(user_id, now))
            return Outcome(DONE, f"suspended {user_id} (idle since {action.idle_since})")
        await self.store.started(queued.id, now)
        await self.hs.deactivate(user_id, erase=action.erase)
        found.append(AccountEnded(user_id, now))
        if account.named_guest:
            found.append(PasswordFound(user_id, True, now))  # no more reminders
        erased = " and erased" if action.erase else ""
        return Outcome(DONE, f"deactivated{erased} {user_id}")

    async def _account(self, info: dict) -> Account | None:
        user_id = info.get("name")
        passwordless = await self.named_guests.passwordless()
        suspended_at = await self.suspensions.since(user_id) if isinstance(user_id, str) else None
        suspended = {user_id: suspended_at} if isinstance(user_id, str) and suspended_at else {}
        return account_of(info, passwordless=passwordless, suspended=suspended)

    async def _own_password(self, user_id: str) -> bool:
        """Whether a named guest has set a password of their own (the derived one fails)."""
        assert self.accounts is not None
        row = await self.named_guests.get(user_id)
        if row is None:
            return True  # not one of guardbot's any more: never touched
        return await self.accounts.probe(user_id, row.key_id) is Probe.REFUSED

    async def _lift(self, action: Unsuspend) -> Outcome:
        info = await self.hs.admin_user(action.user_id)
        if info is None or not info.get("suspended"):
            return Outcome(SKIPPED, f"{action.user_id} is not suspended")
        await self.hs.suspend(action.user_id, False)
        return Outcome(DONE, f"lifted {action.user_id}'s suspension: they set a password")
