"""The reminders' rules, once each (guardbot/core/reminders.py)."""

from __future__ import annotations

from guardbot.core.reminders import LEFT_THE_DM, after_a_leave, next_reminder


def test_the_next_reminder_is_the_one_in_flight_or_the_one_after_the_last() -> None:
    assert next_reminder(nags_sent=0, sending=None, most=3) == 1
    assert next_reminder(nags_sent=1, sending=2, most=3) == 2  # resent after a crash
    assert next_reminder(nags_sent=2, sending=None, most=3) == 3
    assert next_reminder(nags_sent=3, sending=None, most=3) is None
    assert next_reminder(nags_sent=0, sending=None, most=0) is None


def test_one_leave_is_forgiven_a_second_ends_the_reminders() -> None:
    assert after_a_leave(reinvited=False) is None
    assert after_a_leave(reinvited=True) == LEFT_THE_DM
