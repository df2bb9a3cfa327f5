"""Decides on an account's end: the expiry pass's findings and the carrier's (pure, through
core/expiry_rules.py), and, beside the named guests' own decider, a password set by a
suspended named guest (the suspension is lifted)."""

from __future__ import annotations

from typing import Any

from guardbot.core.decision import Decision
from guardbot.core.expiry_rules import ExpiryRules, decide_expiry, lift
from guardbot.core.observations import (
    AccountEnded,
    AccountIdle,
    AccountSuspended,
    PasswordFound,
    PasswordSet,
)
from guardbot.db.suspension_store import SuspensionStore

NOTHING = Decision()


class ExpiryDecider:
    def __init__(self, rules: ExpiryRules, suspensions: SuspensionStore) -> None:
        self.rules = rules
        self.suspensions = suspensions

    async def gather(self, obs: Any) -> int | None:
        """For a password set: since when guardbot holds them suspended (None: it does not)."""
        if isinstance(obs, (PasswordSet, PasswordFound)):
            return await self.suspensions.since(obs.user_id)
        return None

    def decide(self, obs: Any, facts: int | None, now: int) -> Decision:
        match obs:
            case AccountIdle() | AccountSuspended() | AccountEnded():
                return decide_expiry(obs, self.rules, now)
            case PasswordSet() | PasswordFound(deactivated=False):
                return lift(obs.user_id, facts)
        return NOTHING
