"""Decisions on a named guest (named_guests/decider.py): "stop" in their DM ends the reminders
with an answer, leaving the DM is forgiven once, and the events of their life are decided by
core/reminders.py. Gathering reads the named guest's row; deciding is pure. On every supported
database (for the rows), against the scripted homeserver."""

from __future__ import annotations

from dataclasses import replace

from devtools.named_guest_loop import NamedGuestLoop
from guardbot.core.actions import Notice, Remind
from guardbot.core.decision import DmLeft, RemindersEnded
from guardbot.core.observations import ConversationMember, Message, ReminderDue
from guardbot.core.reminders import LEFT_THE_DM
from guardbot.named_guests.decider import (
    STOP_ANSWER,
    DmFacts,
    LifeFacts,
    NamedGuestDecider,
    is_stop,
)
from tests.support.fake_homeserver import FakeHomeserver

USER, DM = "@named:example.org", "!dm:example.org"


async def decider_with_a_dm(named: NamedGuestLoop, fake_hs: FakeHomeserver) -> NamedGuestDecider:
    fake_hs.user(USER)
    await named.name(USER)
    await named.store.set_dm(USER, DM)
    named.guard.parts.facts.conversations.open(DM)
    assert named.guard.parts.named_guests is not None
    return named.guard.parts.named_guests.decider


def test_stop_is_stop_however_it_is_typed() -> None:
    assert all(is_stop(s) for s in ("stop", " STOP! ", "!stop", "Unsubscribe."))
    assert not any(is_stop(s) for s in ("please stop the music", "stopp", ""))


async def test_stop_from_the_named_guest_ends_the_reminders_with_an_answer(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    decider = await decider_with_a_dm(named, fake_hs)
    stop = Message(DM, "$stop", USER, "stop")
    facts = await decider.gather(stop)
    assert isinstance(facts, DmFacts) and facts.row.user_id == USER
    decision = decider.decide(stop, facts, 0)
    assert decision.actions == (Notice(DM, STOP_ANSWER, STOP_ANSWER, cause="$stop"),)
    assert decision.records == (RemindersEnded(USER, "asked to stop"),)
    # Anyone else's "stop", other words, another room: not for this decider.
    assert await decider.gather(Message(DM, "$x", "@alice:example.org", "stop")) is None
    assert await decider.gather(Message(DM, "$y", USER, "hello")) is None
    assert await decider.gather(Message("!other:example.org", "$z", USER, "stop")) is None


async def test_leaving_the_dm_is_forgiven_once(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    decider = await decider_with_a_dm(named, fake_hs)
    left = ConversationMember(DM, "$left", USER, "leave")
    facts = await decider.gather(left)
    assert isinstance(facts, DmFacts) and not facts.deactivated
    assert decider.decide(left, facts, 0).records == (DmLeft(USER),)
    again = replace(facts, row=replace(facts.row, dm_reinvited=True))
    assert decider.decide(left, again, 0).records == (RemindersEnded(USER, LEFT_THE_DM),)
    gone = replace(facts, deactivated=True)
    assert decider.decide(left, gone, 0).records == (RemindersEnded(USER, "deactivated"),)
    fake_hs.users[USER]["deactivated"] = True
    facts = await decider.gather(left)
    assert isinstance(facts, DmFacts) and facts.deactivated


async def test_a_reminder_falling_due_is_decided_by_the_reminders_rules(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    decider = await decider_with_a_dm(named, fake_hs)
    row = await named.store.get(USER)
    assert row is not None and row.next_nag_at is not None
    due = ReminderDue(USER, row.next_nag_at)
    facts = await decider.gather(due)
    assert isinstance(facts, LifeFacts) and facts.guest is not None
    (remind,) = decider.decide(due, facts, row.next_nag_at).actions
    assert isinstance(remind, Remind) and (remind.user_id, remind.n) == (USER, 1)
    stranger = await decider.gather(ReminderDue("@nobody:example.org", 1))
    assert stranger == LifeFacts(None)
    assert decider.decide(due, stranger, 0).actions == ()
