"""Another server's guest stays a guest for as long as the membership its join began: the rule
that reads a member event (core/observations.py `join_began_as_guest`)."""

from __future__ import annotations

from typing import Any

from guardbot.core.observations import MemberChange, join_began_as_guest, replaced_event, triage


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


def test_another_servers_rename_is_looked_at_and_a_local_ones_is_not() -> None:
    """Found in CI: a remote guest's rename racing guardbot's kick won the room's state back
    (the kick and the rename both followed the join; the rename, a join, passed the auth
    rules after the kick). Dropped at triage for lacking `kind`, nothing looked at it again."""
    rename = {
        **member("join", prev="join", replaces="$join"),
        "room_id": "!room",
        "event_id": "$rename",
        "sender": "@1:other.org",
        "state_key": "@1:other.org",
    }
    obs = triage(rename, "example.org", "@guardbot:example.org")
    assert isinstance(obs, MemberChange) and not obs.kind_guest and not obs.new_join
    local = {**rename, "sender": "@alice:example.org", "state_key": "@alice:example.org"}
    assert triage(local, "example.org", "@guardbot:example.org") is None
    first_join = {**rename, "unsigned": {}}  # a remote join without the mark: no guest
    assert triage(first_join, "example.org", "@guardbot:example.org") is None
