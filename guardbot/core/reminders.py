"""The rules of a named guest's reminders, once each: which reminder is next and when, what
leaving the DM means, and what each event in a named guest's life decides. Pure: the
evaluator asks here for reminders falling due and for the executor's findings, the DM's
replies ask `after_a_leave`."""

from __future__ import annotations

from dataclasses import dataclass

from guardbot.core.actions import CarryOver, MarkNamedGuest, Remind, TellPasswordSet
from guardbot.core.decision import (
    NOTHING,
    AuditRecord,
    Decision,
    ReminderCounted,
    ReminderQueued,
    RemindersEnded,
)
from guardbot.core.observations import (
    GuestNamed,
    NamedGuestObservation,
    NamedGuestRegistered,
    PasswordFound,
    PasswordSet,
    ReminderDue,
    ReminderWent,
)

ALL_SENT = "all reminders sent"
LEFT_THE_DM = "left the DM"
SECRET_GONE = "secret no longer configured"


@dataclass(frozen=True)
class ReminderRules:
    every_ms: int
    most: int
    user_type: str | None = None  # pwlu.user_type: the mark for admin tools, while passwordless


@dataclass(frozen=True)
class NamedGuest:
    """What the decisions read of a named guest (db/named_guest_store.py keeps the row)."""

    user_id: str
    active: bool  # registered, reminders not over
    created_at: int
    nags_sent: int
    sending: int | None  # the reminder decided and not yet counted
    next_nag_at: int | None
    secret_known: bool  # the secret its password came from is still configured


def next_reminder(nags_sent: int, sending: int | None, most: int) -> int | None:
    """The number of the reminder to send now (the one in flight, after a crash), or None
    when every one has gone."""
    n = sending or nags_sent + 1
    return n if n <= most else None


def after_a_leave(reinvited: bool) -> str | None:
    """A named guest who leaves the DM is invited back once, with the next reminder; leaving
    again ends the reminders. Why they end, or None: invite back."""
    return LEFT_THE_DM if reinvited else None


def next_due(n: int, due_at: int, now: int, rules: ReminderRules) -> int | None:
    """When reminder n+1 falls due: counted from when n fell due, so the time a send takes
    does not add up from one to the next; after downtime, a full interval from now (no
    burst). None after the last."""
    if n >= rules.most:
        return None
    at = due_at + rules.every_ms
    return at if at > now else now + rules.every_ms


def _story(at: int, user_id: str, what: str, why: str, result: str) -> AuditRecord:
    return AuditRecord(at, "guardbot", what, None, user_id, why, result)


def decide(
    obs: NamedGuestObservation, guest: NamedGuest | None, rules: ReminderRules, now: int
) -> Decision:
    """What an event in a named guest's life asks for. `guest` is None for someone guardbot
    does not remind (never, or no longer)."""
    match obs:
        case GuestNamed():
            # Whether or not reminders go, the guest's rooms follow them.
            action = CarryOver(obs.user_id, obs.guest_id, cause=str(obs.at))
            why = f"{obs.guest_id} became {obs.user_id}"
            return Decision(
                actions=(action,),
                audit=(_story(now, obs.user_id, "decide CarryOver", why, "queued"),),
            )
        case NamedGuestRegistered():
            if rules.user_type is None:
                return NOTHING
            return Decision(actions=(MarkNamedGuest(obs.user_id, rules.user_type, str(obs.at)),))
        case PasswordSet():
            # Told whatever the reminders' state: a change they did not make must not pass unseen.
            action = TellPasswordSet(obs.user_id, obs.how, cause=str(obs.at))
            return Decision(actions=(action,)) + _unmark(obs.user_id, obs.at, rules)
        case PasswordFound() if guest is not None:
            # Whether or not reminders still go: a password of their own spends every link.
            if obs.deactivated:
                return _end(guest.user_id, "deactivated", now)
            ended = _end(guest.user_id, "password set elsewhere", now, password_set=True)
            return ended + _unmark(obs.user_id, obs.at, rules)
    if guest is None or not guest.active:
        return NOTHING
    match obs:
        case ReminderDue():
            if guest.next_nag_at != obs.due_at:
                return NOTHING  # decided already, or moved meanwhile
            if not guest.secret_known:
                return _end(guest.user_id, SECRET_GONE, now)
            n = next_reminder(guest.nags_sent, guest.sending, rules.most)
            if n is None:
                return _end(guest.user_id, ALL_SENT, now)
            action = Remind(guest.user_id, n, obs.due_at, cause=str(guest.created_at))
            audit = _story(now, guest.user_id, "decide Remind", f"reminder {n} fell due", "queued")
            return Decision(
                actions=(action,), audit=(audit,), records=(ReminderQueued(guest.user_id, n),)
            )
        case ReminderWent():
            if guest.sending != obs.n:
                return NOTHING
            at = next_due(obs.n, obs.due_at, obs.at, rules)
            counted = ReminderCounted(guest.user_id, obs.n, at)
            if at is None:
                return Decision(records=(counted,)) + _end(guest.user_id, ALL_SENT, now)
            return Decision(records=(counted,))
    return NOTHING


def _unmark(user_id: str, at: int, rules: ReminderRules) -> Decision:
    """A password of their own: no longer a named guest for admin tools."""
    if rules.user_type is None:
        return NOTHING
    return Decision(actions=(MarkNamedGuest(user_id, None, str(at)),))


def _end(user_id: str, reason: str, now: int, *, password_set: bool = False) -> Decision:
    return Decision(records=(RemindersEnded(user_id, reason, password_set),))
