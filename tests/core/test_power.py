"""Who may do what in a room (guardbot/core/power.py), from its power levels and, from room
version 12 on, its creators."""

from __future__ import annotations

from guardbot.core.power import RoomPower

BOT, ALICE, BOB = "@guardbot:example.org", "@alice:example.org", "@bob:example.org"


def create(version: str, sender: str = ALICE, **content: object) -> dict:
    return {"sender": sender, "content": {"room_version": version, **content}}


def test_levels_decide_who_may_kick_and_send_state() -> None:
    levels = {"users": {BOT: 50, ALICE: 100}, "users_default": 0, "events": {"x.y": 100}}
    power = RoomPower.from_state(levels, create("10"))
    assert power.may_kick(BOT) and not power.may_kick(BOB)
    assert power.may_send_state(BOT, "m.room.guest_access")  # state_default 50
    assert not power.may_send_state(BOT, "x.y") and power.may_send_state(ALICE, "x.y")


def test_without_power_levels_everyone_has_the_default() -> None:
    power = RoomPower.from_state(None, None)
    assert power.of(BOT) == 0 and not power.may_kick(BOT)
    assert power.missing_for_bot(BOT, needs_guest_access=True) == [
        "power to kick (level 50)",
        "power to change guest access (level 50)",
    ]
    assert power.missing_for_bot(BOT, needs_guest_access=False) == ["power to kick (level 50)"]


def test_room_version_12_creators_have_unlimited_power() -> None:
    levels = {"users": {BOB: 100}}
    v12 = RoomPower.from_state(levels, create("12", additional_creators=[BOT]))
    assert v12.may_kick(ALICE) and v12.may_kick(BOT)
    assert v12.missing_for_bot(BOT, needs_guest_access=True) == []
    v11 = RoomPower.from_state(levels, create("11", additional_creators=[BOT]))
    assert not v11.may_kick(ALICE) and not v11.may_kick(BOT)


def test_a_broken_level_falls_back_to_the_default() -> None:
    power = RoomPower.from_state({"users": {BOT: "100"}, "kick": "high"}, None)
    assert power.of(BOT) == 0 and not power.may_kick(BOT)
