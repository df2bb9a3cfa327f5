"""The reminders' rules, once each (guardbot/core/reminders.py)."""

from __future__ import annotations

from dataclasses import replace

from guardbot.core.actions import CarryOver, Remind, TellPasswordSet
from guardbot.core.decision import NOTHING, ReminderCounted, ReminderQueued, RemindersEnded
from guardbot.core.observations import (
    GuestNamed,
    PasswordFound,
    PasswordSet,
    ReminderDue,
    ReminderWent,
)
from guardbot.core.reminders import (
    ALL_SENT,
    LEFT_THE_DM,
    SECRET_GONE,
    NamedGuest,
    ReminderRules,
    after_a_leave,
    decide,
    next_reminder,
)


def test_the_next_reminder_is_the_one_in_flight_or_the_one_after_the_last() -> None:
    assert next_reminder(nags_sent=0, sending=None, most=3) == 1
    assert next_reminder(nags_sent=1, sending=2, most=3) == 2  # resent after a crash
    assert next_reminder(nags_sent=2, sending=None, most=3) == 3
    assert next_reminder(nags_sent=3, sending=None, most=3) is None
    assert next_reminder(nags_sent=0, sending=None, most=0) is None


def test_one_leave_is_forgiven_a_second_ends_the_reminders() -> None:
    assert after_a_leave(reinvited=False) is None
    assert after_a_leave(reinvited=True) == LEFT_THE_DM


# -- what each event in a named guest's life decides ------------------------------------------

RULES = ReminderRules(every_ms=1000, most=3)
USER = "@ann:example.org"


def guest(**changes: object) -> NamedGuest:
    base = NamedGuest(
        user_id=USER,
        active=True,
        created_at=5,
        nags_sent=0,
        sending=None,
        next_nag_at=100,
        secret_known=True,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_a_reminder_due_is_queued_with_its_number_and_holds_the_schedule() -> None:
    d = decide(ReminderDue(USER, 100), guest(nags_sent=1), RULES, now=150)
    assert d.actions == (Remind(USER, 2, 100, cause="5"),)
    assert d.records == (ReminderQueued(USER, 2),)
    assert [a.what for a in d.audit] == ["decide Remind"]


def test_a_stale_or_unknown_due_decides_nothing() -> None:
    assert decide(ReminderDue(USER, 99), guest(), RULES, now=150) == NOTHING  # moved since
    assert decide(ReminderDue(USER, 100), guest(active=False), RULES, now=150) == NOTHING
    assert decide(ReminderDue(USER, 100), None, RULES, now=150) == NOTHING


def test_no_reminder_past_the_last_or_without_its_secret() -> None:
    ended = decide(ReminderDue(USER, 100), guest(nags_sent=3), RULES, now=150)
    assert ended.records == (RemindersEnded(USER, ALL_SENT),) and not ended.actions
    gone = decide(ReminderDue(USER, 100), guest(secret_known=False), RULES, now=150)
    assert gone.records == (RemindersEnded(USER, SECRET_GONE),) and not gone.actions


def test_a_reminder_gone_schedules_the_next_from_when_it_fell_due() -> None:
    went = ReminderWent(USER, 1, due_at=100, at=400)
    d = decide(went, guest(sending=1, next_nag_at=None), RULES, now=400)
    assert d.records == (ReminderCounted(USER, 1, 1100),)
    late = ReminderWent(USER, 1, due_at=100, at=5000)  # after downtime: a full interval on
    d = decide(late, guest(sending=1, next_nag_at=None), RULES, now=5000)
    assert d.records == (ReminderCounted(USER, 1, 6000),)


def test_the_last_reminder_gone_ends_them() -> None:
    went = ReminderWent(USER, 3, due_at=100, at=400)
    d = decide(went, guest(nags_sent=2, sending=3, next_nag_at=None), RULES, now=400)
    assert d.records == (ReminderCounted(USER, 3, None), RemindersEnded(USER, ALL_SENT))


def test_a_reminder_gone_twice_is_counted_once() -> None:
    went = ReminderWent(USER, 1, due_at=100, at=400)
    assert decide(went, guest(nags_sent=1, sending=None), RULES, now=400) == NOTHING


def test_a_password_found_ends_reminders_and_says_why() -> None:
    own = decide(PasswordFound(USER, False, 7), guest(), RULES, now=7)
    assert own.records == (RemindersEnded(USER, "password set elsewhere", password_set=True),)
    gone = decide(PasswordFound(USER, True, 7), guest(), RULES, now=7)
    assert gone.records == (RemindersEnded(USER, "deactivated"),)
    # After "stop", too: the password is theirs, and every claim link is spent.
    stopped = decide(PasswordFound(USER, False, 7), guest(active=False), RULES, now=7)
    assert stopped.records == own.records


def test_a_password_set_is_told_and_a_guest_named_carries_its_rooms() -> None:
    told = decide(PasswordSet(USER, "on the page", 7), None, RULES, now=7)
    assert told.actions == (TellPasswordSet(USER, "on the page", cause="7"),)
    named = decide(GuestNamed(USER, "@123:example.org", 8), None, RULES, now=8)
    assert named.actions == (CarryOver(USER, "@123:example.org", cause="8"),)
    assert [a.what for a in named.audit] == ["decide CarryOver"]
