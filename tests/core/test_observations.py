"""Observations (guardbot/core/observations.py): which homeserver events matter (triage), what
is malformed, and the inbox's keys. How a transaction's events become observations without one
bad event costing the others is in tests/guard/test_intake_hostile.py."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guardbot.core.observations import (
    BotMembership,
    GuestAccessChange,
    HomeserverBack,
    MalformedEvent,
    MemberChange,
    MemberFound,
    PowerChange,
    RoomListed,
    RoomUpgraded,
    describe,
    observation_key,
    triage,
)

DOMAIN = "example.org"
BOT = "@guardbot:example.org"
ROOM = "!room:example.org"
GUEST = "@1234:example.org"


def member(
    user_id: str = GUEST,
    membership: str = "join",
    *,
    kind: str | None = None,
    prev: str | None = None,
    event_id: str = "$join",
) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": membership}
    if kind is not None:
        content["kind"] = kind
    event: dict[str, Any] = {
        "type": "m.room.member",
        "room_id": ROOM,
        "event_id": event_id,
        "sender": user_id,
        "state_key": user_id,
        "content": content,
    }
    if prev is not None:
        event["unsigned"] = {"prev_content": {"membership": prev}}
    return event


def guest_access(value: str, sender: str = "@alice:example.org", event_id: str = "$ga") -> dict:
    return {
        "type": "m.room.guest_access",
        "room_id": ROOM,
        "event_id": event_id,
        "sender": sender,
        "state_key": "",
        "content": {"guest_access": value},
    }


# -- triage ---------------------------------------------------------------------------------
def test_guest_join_with_kind_guest_is_a_member_change() -> None:
    obs = triage(member(kind="guest", prev="invite"), DOMAIN, BOT)
    assert obs == MemberChange(ROOM, GUEST, "$join", "join", "invite", kind_guest=True)
    assert obs.new_join


def test_rejoin_is_not_a_new_join() -> None:
    obs = triage(member(kind="guest", prev="join"), DOMAIN, BOT)
    assert isinstance(obs, MemberChange) and not obs.new_join


def test_invite_of_numeric_local_user_without_kind_is_a_candidate() -> None:
    obs = triage(member(membership="invite"), DOMAIN, BOT)
    assert isinstance(obs, MemberChange)
    assert (obs.membership, obs.kind_guest, obs.prev_membership) == ("invite", False, None)


@pytest.mark.parametrize("kind", [None, "guest"])
def test_non_numeric_local_user_is_ignored(kind: str | None) -> None:
    assert triage(member("@alice:example.org", kind=kind), DOMAIN, BOT) is None


@pytest.mark.parametrize("membership", ["leave", "ban", "knock"])
def test_guest_leaving_is_ignored(membership: str) -> None:
    assert triage(member(kind="guest", membership=membership), DOMAIN, BOT) is None


def test_remote_user_counts_only_with_kind_guest() -> None:
    assert triage(member("@1234:other.org"), DOMAIN, BOT) is None
    obs = triage(member("@bob:other.org", kind="guest"), DOMAIN, BOT)
    assert isinstance(obs, MemberChange) and obs.user_id == "@bob:other.org"


def test_lookalike_domain_is_remote() -> None:
    assert triage(member("@1234:evil-example.org"), DOMAIN, BOT) is None
    assert triage(member("@1234:example.org.evil"), DOMAIN, BOT) is None


@pytest.mark.parametrize("membership", ["invite", "join", "leave"])
def test_bots_own_membership(membership: str) -> None:
    event = {**member(BOT, membership=membership, event_id="$bot"), "sender": "@alice:x"}
    obs = triage(event, DOMAIN, BOT)
    assert obs == BotMembership(ROOM, "$bot", membership, sender="@alice:x")


def test_guest_access_and_power_levels_events() -> None:
    obs = triage(guest_access("can_join"), DOMAIN, BOT)
    assert obs == GuestAccessChange(ROOM, "$ga", "@alice:example.org", "can_join")
    power = {"type": "m.room.power_levels", "room_id": ROOM, "event_id": "$pl", "state_key": ""}
    assert triage({**power, "content": {}}, DOMAIN, BOT) == PowerChange(ROOM, "$pl")


def test_non_state_lookalikes_and_messages_are_ignored() -> None:
    msg = {"type": "m.room.message", "room_id": ROOM, "event_id": "$m", "content": {"body": "hi"}}
    assert triage(msg, DOMAIN, BOT) is None
    no_state_key = guest_access("can_join")
    del no_state_key["state_key"]
    assert triage(no_state_key, DOMAIN, BOT) is None


def _broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = member(kind="guest")
    target = event
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


_DELETE = object()


@pytest.mark.parametrize(
    "event",
    [
        "not an event",
        ["m.room.member"],
        None,
        _broken(("content",), "join"),
        _broken(("content",), _DELETE),
        _broken(("state_key",), _DELETE),
        _broken(("state_key",), 1234),
        _broken(("state_key",), ""),
        _broken(("content", "membership"), _DELETE),
        _broken(("content", "membership"), ["join"]),
        _broken(("room_id",), _DELETE),
        _broken(("event_id",), None),
        {**guest_access("can_join"), "sender": 5},
        {"type": "m.room.power_levels", "state_key": "", "event_id": "$pl"},
    ],
)
def test_malformed_events_raise(event: Any) -> None:
    with pytest.raises(MalformedEvent):
        triage(event, DOMAIN, BOT)


def test_inbox_keys_tell_observations_apart() -> None:
    """The inbox keeps one of each: a member found twice by one sweep is one row, a room
    listed again later is a new one, and one outage is one sweep of every room."""
    found = MemberFound(ROOM, GUEST, "$j", "join", kind_guest=True)
    assert observation_key(found) == observation_key(MemberFound(ROOM, GUEST, "$j", "join", False))
    assert observation_key(found) != observation_key(
        MemberFound(ROOM, "@9:example.org", "$j", "join", True)
    )
    assert observation_key(RoomListed(ROOM, 1)) != observation_key(RoomListed(ROOM, 2))
    assert observation_key(HomeserverBack(5)) == observation_key(HomeserverBack(5))
    assert observation_key(HomeserverBack(5)) != observation_key(HomeserverBack(6))


def test_describe_never_gives_a_message_text() -> None:
    from guardbot.core.observations import Message

    line = describe(Message("!dm:example.org", "$m", "@alice:example.org", "my password is x"))
    assert "password" not in line and "@alice:example.org" in line


def test_triage_does_not_modify_the_event() -> None:
    event = member(kind="guest", prev="invite")
    before = copy.deepcopy(event)
    triage(event, DOMAIN, BOT)
    assert event == before


def test_a_tombstone_with_a_successor_is_an_upgrade() -> None:
    tomb = {
        "type": "m.room.tombstone",
        "room_id": ROOM,
        "event_id": "$t",
        "sender": "@a:x",
        "state_key": "",
        "content": {"replacement_room": "!new:example.org", "body": "moved"},
    }
    assert triage(tomb, DOMAIN, BOT) == RoomUpgraded(ROOM, "$t", "@a:x", "!new:example.org")
    for content in ({}, {"replacement_room": 5}, {"replacement_room": "#alias:x"}):
        assert triage({**tomb, "content": content}, DOMAIN, BOT) is None
