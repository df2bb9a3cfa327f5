"""The rules of a named guest's reminders, once each: which reminder is next, and what leaving
the DM means. Pure: the nagger and the DM's replies both ask here."""

from __future__ import annotations

ALL_SENT = "all reminders sent"
LEFT_THE_DM = "left the DM"


def next_reminder(nags_sent: int, sending: int | None, most: int) -> int | None:
    """The number of the reminder to send now (the one in flight, after a crash), or None
    when every one has gone."""
    n = sending or nags_sent + 1
    return n if n <= most else None


def after_a_leave(reinvited: bool) -> str | None:
    """A named guest who leaves the DM is invited back once, with the next reminder; leaving
    again ends the reminders. Why they end, or None: invite back."""
    return LEFT_THE_DM if reinvited else None
