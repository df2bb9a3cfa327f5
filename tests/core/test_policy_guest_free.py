"""Rooms guests must never be in, listed or not (policy.guest_free_rooms)."""

from __future__ import annotations

from guardbot.core.policy import (
    Policy,
    RoomPolicySetting,
    ServerPolicy,
    Verdict,
    refuse_at_the_door,
    removes_guests,
    room_facts,
    why_not_removed,
)

ROOM = "!lobby:example.org"


def test_an_unlisted_guest_free_room_removes_guests_and_refuses_them_at_the_door() -> None:
    room = room_facts(ServerPolicy(default=Policy.KICK), ROOM, False, None, {}, guest_free=True)
    assert removes_guests(room)
    assert why_not_removed(room, "join", Verdict.GUEST) is None
    assert why_not_removed(room, "invite", Verdict.GUEST) is None
    assert refuse_at_the_door(room, Verdict.GUEST)
    assert not refuse_at_the_door(room, Verdict.NOT_GUEST)


def test_the_same_room_not_guest_free_and_unlisted_is_left_alone() -> None:
    room = room_facts(ServerPolicy(default=Policy.KICK), ROOM, False, None, {})
    assert not removes_guests(room)
    assert why_not_removed(room, "join", Verdict.GUEST) == "room is no longer listed"


def test_room_admins_cannot_turn_a_guest_free_room_off() -> None:
    off = RoomPolicySetting(ROOM, "off", None, "@admin:example.org", "$p", 1)
    room = room_facts(ServerPolicy(default=Policy.FORBID), ROOM, True, off, {}, guest_free=True)
    assert room.policy is Policy.FORBID
    assert removes_guests(room)
    # Nor can the server admin's default of "off" make it so: kick is what is left.
    server = ServerPolicy(default=Policy.OFF)
    assert room_facts(server, ROOM, False, off, {}, guest_free=True).policy is Policy.KICK


def test_a_guest_free_rooms_own_choice_of_kick_or_forbid_stands() -> None:
    kick = RoomPolicySetting(ROOM, "kick", None, "@admin:example.org", "$p", 1)
    room = room_facts(ServerPolicy(default=Policy.FORBID), ROOM, True, kick, {}, guest_free=True)
    assert room.policy is Policy.KICK
