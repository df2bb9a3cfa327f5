"""Another server's guest stays a guest for as long as the membership its join began: the rule
that reads a member event (core/observations.py `join_began_as_guest`)."""

from __future__ import annotations

from typing import Any

from guardbot.core.observations import join_began_as_guest, replaced_event


def member(
    membership: str, *, kind: str | None = None, prev: str | None = None, replaces: str = "$prev"
) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": membership}
    if kind:
        content["kind"] = kind
    unsigned: dict[str, Any] = {}
    if prev:
        unsigned = {"prev_content": {"membership": prev}, "replaces_state": replaces}
    return {"type": "m.room.member", "content": content, "unsigned": unsigned}


def test_a_join_that_says_guest_begins_a_guests_membership() -> None:
    assert join_began_as_guest(member("join", kind="guest")) is True
    assert join_began_as_guest(member("join", kind="guest", prev="leave")) is True
    assert join_began_as_guest(member("join", kind="guest", prev="invite")) is True


def test_a_join_without_the_mark_begins_an_ordinary_membership() -> None:
    assert join_began_as_guest(member("join")) is False
    assert join_began_as_guest(member("join", prev="leave")) is False


def test_a_rename_sends_the_reader_further_back() -> None:
    rename = member("join", prev="join", replaces="$join")
    assert join_began_as_guest(rename) is None
    assert replaced_event(rename) == "$join"


def test_a_member_no_longer_joined_is_no_guest_inside() -> None:
    assert join_began_as_guest(member("leave", kind="guest", prev="join")) is False
    assert join_began_as_guest(member("ban", prev="join")) is False
    assert join_began_as_guest(None) is False
    assert join_began_as_guest({"content": "nonsense"}) is False
