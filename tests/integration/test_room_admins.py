"""Room admins choose guardbot's policy for their own room: by state event or by command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from guardbot.core.observations import POLICY_EVENT
from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, User, wait_for
from tests.support.rooms import listed_room, notice_containing, wait_removed


async def test_policy_by_state_event_and_by_command(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    bot_id = homeserver.bot_user_id
    await start_guardbot(POLICY__LISTED_ROOMS="forbid")
    alice = await homeserver.user("alice_roomadmin")
    room_id = await listed_room(homeserver, alice)

    # The state event: kick instead of the server's default forbid.
    await alice.set_state(room_id, POLICY_EVENT, {"listed_rooms": "kick", "reason": "be nice"})
    await notice_containing(alice, room_id, bot_id, "policy is now kick, set by " + alice.user_id)
    # Under kick guardbot leaves guest_access alone and removes joining guests itself.
    await alice.set_state(room_id, "m.room.guest_access", {"guest_access": "can_join"})
    guest = await homeserver.guest()
    await guest.join(room_id)
    await wait_removed(alice, room_id, guest.user_id)
    assert (await alice.member_event(room_id, guest.user_id))["content"]["reason"] == "be nice"

    # The command: back to forbid, written as the room's state event by guardbot.
    await alice.send_text(room_id, "!guardbot policy forbid closed to guests")
    await notice_containing(alice, room_id, bot_id, "policy is now forbid, set by " + alice.user_id)
    event = await alice.state(room_id, POLICY_EVENT)
    assert event == {
        "listed_rooms": "forbid",
        "reason": "closed to guests",
        "set_by": alice.user_id,
    }
    await wait_for(
        lambda: _guest_access(alice, room_id, "forbidden"), what="forbid applied to the room"
    )

    await alice.send_text(room_id, "!guardbot status")
    status = await notice_containing(alice, room_id, bot_id, "guardbot status for this room")
    body = status["content"]["body"]
    assert "listed in the public room directory: yes" in body
    assert f"policy: forbid, from the room's admins ({alice.user_id}), reason: closed" in body
    assert "guests removed here: 1" in body
    assert "guardbot has the power it needs" in body
    assert "<strong>" in status["content"]["formatted_body"]


async def test_non_admin_and_forbidden_choices_are_refused(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    bot_id = homeserver.bot_user_id
    bot = await start_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await homeserver.user("alice_refuse")
    bob = await homeserver.user("bob_refuse")
    room_id = await listed_room(homeserver, alice)
    await bob.join(room_id)

    await bob.send_text(room_id, "!guardbot policy off")
    await notice_containing(alice, room_id, bot_id, "You need power level 50")
    with pytest.raises(MatrixError):  # and the homeserver will not take the event from him
        await bob.set_state(room_id, POLICY_EVENT, {"listed_rooms": "off"})

    # The server admin's bound (policy.room_admins_may, default forbid and kick) holds for
    # room admins too, by command and by state event.
    await alice.send_text(room_id, "!guardbot policy off")
    await notice_containing(alice, room_id, bot_id, "does not let rooms choose 'off'")
    await alice.set_state(room_id, POLICY_EVENT, {"listed_rooms": "off"})
    await notice_containing(alice, room_id, bot_id, "ignores this policy change")

    guest = await homeserver.guest()
    await guest.join(room_id)
    await wait_removed(alice, room_id, guest.user_id)  # still kick, not off

    # Every refusal and decision is in the audit log, readable by the operator.
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardbot",
            "audit",
            "-c",
            str(homeserver.config_path),
            "--room",
            room_id,
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GUARDBOT_DATABASE": bot.env["GUARDBOT_DATABASE"]},
    )
    entries = [json.loads(line) for line in out.stdout.splitlines()]
    assert any(e["what"] == "Kick" and e["user_id"] == guest.user_id for e in entries)
    assert all(e["room_id"] == room_id for e in entries)
    refusals = [e for e in entries if e["what"] == "policy" and e["result"] == "refused"]
    assert {e["user_id"] for e in refusals} == {alice.user_id}  # bob's never reached a decision


async def _guest_access(viewer: User, room_id: str, value: str) -> bool:
    content = await viewer.state(room_id, "m.room.guest_access")
    return bool(content) and content.get("guest_access") == value
