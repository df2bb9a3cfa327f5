"""Every guest account has an end: the rules of expiry by inactivity. Pure.

A guest idle longer than `guests_idle` is deactivated. A named guest who never set a password,
idle longer than `named_guests_idle`, is suspended (reversible), and deactivated after
`suspended_for` more unless they set a password first, which lifts the suspension. A named
guest with no device left can never read a reminder or log in again (they have no password
they know): they count as idle after `guests_idle`, like a guest, but are still suspended
first, so an admin can still lift it. Never an admin, an exempt user, guardbot itself, or
anyone with a password of their own; every step is re-checked right before it is done.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from guardbot.core.actions import Action, Deactivate, Suspend, Unsuspend
from guardbot.core.decision import (
    AuditRecord,
    Decision,
    SuspensionBegan,
    SuspensionEnded,
)
from guardbot.core.observations import (
    AccountEnded,
    AccountIdle,
    AccountSuspended,
    ExpiryObservation,
    describe,
)


class Step(StrEnum):
    SUSPEND = "suspend"
    DEACTIVATE = "deactivate"


@dataclass(frozen=True)
class ExpiryRules:
    """The server admin's choices (config `expiry.*`), durations in ms."""

    enabled: bool = False
    dry_run: bool = False
    guests_idle: int = 30 * 86_400_000
    named_guests_idle: int = 90 * 86_400_000
    suspended_for: int = 30 * 86_400_000
    erase: bool = False
    exempt: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Account:
    """What the homeserver (and guardbot's own records) say about one account now."""

    user_id: str
    is_guest: bool
    admin: bool
    deactivated: bool
    last_active: int  # last_seen_ts, or the creation time when never seen (ms)
    named_guest: bool = False  # a named guest still on guardbot's derived password
    suspended_at: int | None = None  # when guardbot suspended them (its record)
    has_device: bool = True


@dataclass(frozen=True)
class Upcoming:
    """An account's next step and when it falls due (ms), for the preview."""

    user_id: str
    step: Step
    at: int


def last_active(entry: Mapping[str, Any]) -> int | None:
    """An account's last activity (ms) from the admin API's answer: `last_seen_ts`, or its
    creation when never seen (one user's answer gives seconds, the list milliseconds)."""
    seen, created = entry.get("last_seen_ts"), entry.get("creation_ts")
    if isinstance(seen, int):
        return seen
    if isinstance(created, int):
        return created * 1000 if created < 100_000_000_000 else created
    return None


def why_exempt(account: Account, rules: ExpiryRules) -> str | None:
    """None if the account may be ended at all, else why never."""
    if account.deactivated:
        return "already deactivated"
    if account.admin:
        return "a server admin"
    if account.user_id in rules.exempt:
        return "exempt (bot.exempt_users, or guardbot itself)"
    if not account.is_guest and not account.named_guest:
        return "has a password of their own"
    return None


def next_step(account: Account, rules: ExpiryRules) -> tuple[Step, int] | None:
    """The account's next step and when it falls due (ms), or None if it has none."""
    if why_exempt(account, rules) is not None:
        return None
    if account.is_guest:
        return Step.DEACTIVATE, account.last_active + rules.guests_idle
    if account.suspended_at is not None:
        return Step.DEACTIVATE, account.suspended_at + rules.suspended_for
    idle = rules.named_guests_idle if account.has_device else rules.guests_idle
    return Step.SUSPEND, account.last_active + idle


def due(account: Account, rules: ExpiryRules, now: int) -> Step | None:
    step = next_step(account, rules)
    return step[0] if step is not None and step[1] <= now else None


def why_not_ended(
    account: Account, action: Suspend | Deactivate, rules: ExpiryRules, now: int
) -> str | None:
    """The re-check right before a step is done, on fresh facts: None if it goes ahead."""
    if not rules.enabled:
        return "expiry is off"
    exempt = why_exempt(account, rules)
    if exempt:
        return exempt
    if account.last_active > action.idle_since and account.suspended_at is None:
        return "used since the decision"
    step = due(account, rules, now)
    wanted = Step.SUSPEND if isinstance(action, Suspend) else Step.DEACTIVATE
    if step is not wanted:
        return f"{wanted} is not due (account used, or suspension lifted)"
    return None


def decide_expiry(obs: ExpiryObservation, rules: ExpiryRules, now: int) -> Decision:
    match obs:
        case AccountIdle():
            action: Action
            if obs.step == Step.SUSPEND:
                action = Suspend(obs.user_id, obs.idle_since)
            else:
                action = Deactivate(obs.user_id, obs.idle_since, rules.erase, obs.suspended_at)
            audit = AuditRecord(
                now,
                "guardbot",
                f"decide {type(action).__name__}",
                None,
                obs.user_id,
                describe(obs),
                "queued",
            )
            return Decision(actions=(action,), audit=(audit,))
        case AccountSuspended():
            return Decision(records=(SuspensionBegan(obs.user_id, obs.at),))
        case AccountEnded():
            return Decision(records=(SuspensionEnded(obs.user_id, "deactivated"),))
    return Decision()


def lift(user_id: str, suspended_at: int | None) -> Decision:
    """A named guest set a password: a suspension by guardbot is lifted, and expiry ends."""
    if suspended_at is None:
        return Decision()
    return Decision(
        actions=(Unsuspend(user_id, suspended_at),),
        records=(SuspensionEnded(user_id, "they set a password"),),
    )
