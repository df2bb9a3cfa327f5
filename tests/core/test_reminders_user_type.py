"""The mark for admin tools (pwlu.user_type): decided with the rest of a named guest's life
(core/reminders.py)."""

from __future__ import annotations

from guardbot.core.actions import MarkNamedGuest, TellPasswordSet
from guardbot.core.observations import NamedGuestRegistered, PasswordFound, PasswordSet
from guardbot.core.reminders import NamedGuest, ReminderRules, decide

USER = "@alice:example.org"
MARKED = ReminderRules(every_ms=1000, most=3, user_type="named_guest")
UNMARKED = ReminderRules(every_ms=1000, most=3)
GUEST = NamedGuest(USER, True, 0, 0, None, 5, True)


def test_a_new_named_guest_is_marked_only_when_the_admin_asked() -> None:
    registered = NamedGuestRegistered(USER, 7)
    assert decide(registered, GUEST, MARKED, 7).actions == (
        MarkNamedGuest(USER, "named_guest", "7"),
    )
    assert decide(registered, GUEST, UNMARKED, 7).actions == ()


def test_a_password_of_their_own_clears_the_mark() -> None:
    set_here = decide(PasswordSet(USER, "through the API", 9), GUEST, MARKED, 9)
    assert set_here.actions == (
        TellPasswordSet(USER, "through the API", "9"),
        MarkNamedGuest(USER, None, "9"),
    )
    found = decide(PasswordFound(USER, False, 9), GUEST, MARKED, 9)
    assert MarkNamedGuest(USER, None, "9") in found.actions
    # A deactivated account keeps what it had: nobody uses it any more.
    assert decide(PasswordFound(USER, True, 9), GUEST, MARKED, 9).actions == ()
    assert decide(PasswordSet(USER, "x", 9), GUEST, UNMARKED, 9).actions == (
        TellPasswordSet(USER, "x", "9"),
    )
