"""What guardbot learns as it joins a room: the room's own policy (even one in its initial
state), and an upgraded room's replacement, which it follows with the policy."""

from __future__ import annotations

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import wait_for
from tests.support.rooms import listed_room, membership_is, wait_removed

POLICY_EVENT = "dev.guardbot.policy"


async def test_a_policy_in_the_initial_state_applies_from_the_start(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="forbid")  # the server default
    alice = await homeserver.user("alice_initial")
    own = {"type": POLICY_EVENT, "state_key": "", "content": {"listed_rooms": "kick"}}
    room_id = await listed_room(homeserver, alice, state=[own])
    guest = await homeserver.guest()

    await guest.join(room_id)
    await wait_removed(alice, room_id, guest.user_id)
    # The room's own kick, not the default forbid: guest access is as the room was made.
    assert (await alice.state(room_id, "m.room.guest_access"))["guest_access"] == "can_join"
    event = await alice.member_event(room_id, guest.user_id)
    assert event is not None and event["sender"] == homeserver.bot_user_id


async def test_an_upgraded_listed_room_is_followed_with_its_policy(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="forbid")
    alice = await homeserver.user("alice_upgrade")
    own = {
        "type": POLICY_EVENT,
        "state_key": "",
        "content": {"listed_rooms": "kick", "reason": "Be kind"},
    }
    room_id = await listed_room(homeserver, alice, state=[own])
    await wait_for(
        lambda: _policy_noticed(alice, room_id, homeserver.bot_user_id),
        what="guardbot to take the room's policy",
    )

    new_room = await alice.upgrade(room_id)  # nobody invites guardbot there
    await wait_for(
        lambda: membership_is(alice, new_room, homeserver.bot_user_id, "join"),
        timeout=60,
        what="guardbot to follow the upgrade",
    )
    carried = await wait_for(
        lambda: alice.state(new_room, POLICY_EVENT), timeout=30, what="the policy carried over"
    )
    assert carried["listed_rooms"] == "kick" and carried["set_by"] == alice.user_id

    guest = await homeserver.guest()
    await guest.join(new_room)
    await wait_removed(alice, new_room, guest.user_id, timeout=60)
    event = await alice.member_event(new_room, guest.user_id)
    assert event is not None and event["content"].get("reason") == "Be kind"
    assert (await alice.state(new_room, "m.room.guest_access"))["guest_access"] == "can_join"


async def _policy_noticed(viewer, room_id: str, bot: str) -> bool:
    for event in await viewer.timeline(room_id):
        if event["sender"] == bot and "policy is now kick" in event["content"].get("body", ""):
            return True
    return False
