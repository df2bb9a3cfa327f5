"""Actions (guardbot/core/actions.py): what each is keyed on (a decision reached twice queues
it once), whose lane it waits in, what its audit record says, and a notice's two renderings."""

from __future__ import annotations

from guardbot.core.actions import (
    ACTIONS,
    CarryOver,
    ForbidGuestAccess,
    Kick,
    Remind,
    Sweep,
    TellPasswordSet,
    lane,
    notice,
    reason,
    room_of,
)

ROOM, USER = "!room:example.org", "@7:example.org"


def test_a_notice_is_plain_text_and_escaped_html_with_its_first_line_as_heading() -> None:
    said = notice(ROOM, ["Status <b>now</b>", "• one & two", "• three"], cause="$cmd")
    assert said.text == "Status <b>now</b>\n• one & two\n• three"
    assert said.html == (
        "<p><strong>Status &lt;b&gt;now&lt;/b&gt;</strong></p>"
        "<ul><li>one &amp; two</li><li>three</li></ul>"
    )
    assert notice(ROOM, ["Just this"], cause="$c").html == "<p><strong>Just this</strong></p>"
    assert said.key == notice(ROOM, ["other words"], cause="$cmd").key  # one answer per cause


def test_room_actions_wait_in_their_rooms_lane_and_personal_ones_in_the_persons() -> None:
    kick = Kick(ROOM, USER, "no guests", "$join")
    remind = Remind("@named:example.org", 2, 1000, cause="500")
    assert (lane(kick), room_of(kick)) == (ROOM, ROOM)
    assert (lane(Sweep(ROOM, "$s")), room_of(Sweep(ROOM, "$s"))) == (ROOM, ROOM)
    assert (lane(remind), room_of(remind)) == ("@named:example.org", None)


def test_the_audit_says_why_in_words() -> None:
    assert reason(Kick(ROOM, USER, "no guests", "$join")) == "caused by $join"
    assert reason(Remind(USER, 2, 1000, cause="500")) == "reminder 2 fell due"
    assert reason(TellPasswordSet(USER, "on the claim page", "9")) == (
        "their password was set on the claim page"
    )
    assert reason(CarryOver("@named:example.org", USER, "9")) == (
        f"{USER} became @named:example.org"
    )


def test_a_reminder_is_keyed_on_its_number_and_the_registration_it_belongs_to() -> None:
    first = Remind(USER, 1, due_at=1000, cause="500")
    assert first.key == Remind(USER, 1, due_at=2000, cause="500").key  # due later: same one
    assert first.key != Remind(USER, 2, due_at=1000, cause="500").key
    assert first.key != Remind(USER, 1, due_at=1000, cause="600").key  # a new account


def test_every_action_type_is_in_the_codecs_registry_under_its_name() -> None:
    for cls in (Kick, ForbidGuestAccess, Sweep, Remind, TellPasswordSet, CarryOver):
        assert ACTIONS[cls.__name__] is cls
