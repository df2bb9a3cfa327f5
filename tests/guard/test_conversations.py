"""The rooms where guardbot talks with people (guard/conversations.py): opened by whoever
starts a conversation, closed when a stored decision forgets a named guest."""

from __future__ import annotations

from guardbot.core.decision import NamedGuestForgotten, RoomWoken
from guardbot.guard.conversations import Conversations


def test_conversations_are_opened_and_closed_by_what_was_decided() -> None:
    talks = Conversations(["!mgmt:example.org", ""])  # no management room: no ""
    assert "!mgmt:example.org" in talks and "" not in talks and len(talks) == 1
    talks.open("!dm:example.org")
    assert set(talks) == {"!mgmt:example.org", "!dm:example.org"}
    talks.remember([RoomWoken("!dm:example.org")])  # not about a conversation
    assert "!dm:example.org" in talks
    talks.remember([NamedGuestForgotten("@named:example.org", "!dm:example.org")])
    assert set(talks) == {"!mgmt:example.org"}
    talks.remember([NamedGuestForgotten("@never:example.org", None)])  # had no DM
    assert set(talks) == {"!mgmt:example.org"}
