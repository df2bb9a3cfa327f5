"""The door: a real Synapse asks guardbot before joins, invites and publications through
synapse-http-antispam, wired as `guardbot -g` prints it (fail_open, do_ping)."""

from __future__ import annotations

import pathlib

import pytest

from tests.support.doctor import doctor_line
from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, upgrade_guest
from tests.support.rooms import listed_room, wait_removed

REFUSAL = "Create an account (or sign in), then join again"


async def test_a_guest_is_refused_at_the_door_with_guardbots_words(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot
) -> None:
    await start_door_guardbot(POLICY__LISTED_ROOMS="kick")
    hs = door_homeserver
    alice = await hs.user("alice_door")
    room_id = await listed_room(hs, alice)
    guest = await hs.guest()

    with pytest.raises(MatrixError) as refused:
        await guest.join(room_id)
    assert (refused.value.status, refused.value.errcode) == (403, "M_FORBIDDEN")
    assert REFUSAL in refused.value.body["error"]
    assert await alice.member_event(room_id, guest.user_id) is None  # never entered
    # `kick` at the door leaves the room's guest access as its admins set it.
    assert (await alice.state(room_id, "m.room.guest_access"))["guest_access"] == "can_join"

    bob = await hs.user("bob_door")
    await bob.join(room_id)  # everyone else passes
    assert await alice.membership(room_id, bob.user_id) == "join"
    upgraded = await upgrade_guest(await hs.guest())
    await upgraded.join(room_id)  # an upgraded guest keeps its numeric ID and is no guest
    assert await alice.membership(room_id, upgraded.user_id) == "join"


async def test_a_guest_is_not_invited_into_a_listed_room(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot
) -> None:
    await start_door_guardbot(POLICY__LISTED_ROOMS="forbid")
    hs = door_homeserver
    alice = await hs.user("alice_door_invite")
    room_id = await listed_room(hs, alice)
    guest = await hs.guest()

    with pytest.raises(MatrixError) as refused:
        await alice.invite(room_id, guest.user_id)
    assert refused.value.status == 403 and REFUSAL in refused.value.body["error"]
    assert await alice.member_event(room_id, guest.user_id) is None


async def test_a_publication_is_enforced_before_the_next_poll(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot
) -> None:
    # The directory is polled once at start, then not for an hour: only the door can tell.
    await start_door_guardbot(POLICY__LISTED_ROOMS="kick", DIRECTORY__POLL_INTERVAL=3600)
    hs = door_homeserver
    alice = await hs.user("alice_door_publish")
    bob = await hs.user("bob_door_publish")
    room_id = await listed_room(hs, alice, listed=False)
    guests = [await hs.guest() for _ in range(2)]
    for guest in guests:
        await guest.join(room_id)  # not listed: guests may join by link
    await bob.join(room_id)

    await alice.set_listed(room_id, True)
    for guest in guests:
        await wait_removed(alice, room_id, guest.user_id, timeout=60)
    assert await alice.membership(room_id, bob.user_id) == "join"


async def test_the_door_fails_open_while_guardbot_is_down_and_the_backstop_catches_up(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot
) -> None:
    hs = door_homeserver
    bot = await start_door_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await hs.user("alice_door_down")
    room_id = await listed_room(hs, alice)
    await bot.stop()

    guest = await hs.guest()
    await guest.join(room_id)  # nobody at the door: fail_open lets the join through
    assert await alice.membership(room_id, guest.user_id) == "join"

    await start_door_guardbot(POLICY__LISTED_ROOMS="kick")  # same database
    await wait_removed(alice, room_id, guest.user_id, timeout=60)
    event = await alice.member_event(room_id, guest.user_id)
    assert event is not None and event["sender"] == hs.bot_user_id


async def test_doctor_sees_that_the_homeserver_calls_the_door(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot, tmp_path: pathlib.Path
) -> None:
    bot = await start_door_guardbot(POLICY__LISTED_ROOMS="kick")
    hs = door_homeserver
    alice = await hs.user("alice_door_doctor")
    room_id = await listed_room(hs, alice)
    with pytest.raises(MatrixError):
        await (await hs.guest()).join(room_id)  # a call at the door: the first is recorded
    await bot.stop()

    line, out = doctor_line(hs.config_path, bot.env, tmp_path, "door")
    assert line.startswith("✓") and "the homeserver called it" in line, out


async def test_a_wrong_door_token_never_stops_the_servers_joins(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot, tmp_path: pathlib.Path
) -> None:
    """homeserver.yaml's authorization no longer matches antispam.token (a -g that made new
    tokens): every local join on the server was refused with "Wrong antispam token". Now the
    module's fail_open lets joins through, the event path removes the guest, and doctor names
    the token."""
    hs = door_homeserver
    bot = await start_door_guardbot(
        POLICY__LISTED_ROOMS="kick", ANTISPAM__TOKEN="not-the-token-in-homeserver-yaml"
    )
    alice = await hs.user("alice_door_token")
    room_id = await listed_room(hs, alice)  # the publication passes too
    bob = await hs.user("bob_door_token")
    await bob.join(room_id)
    assert await alice.membership(room_id, bob.user_id) == "join"
    guest = await hs.guest()
    await guest.join(room_id)  # unchecked at the door: the backstop acts
    await wait_removed(alice, room_id, guest.user_id, timeout=60)
    assert await alice.membership(room_id, bob.user_id) == "join"
    await bot.stop()
    assert "the door module's token is not guardbot's antispam.token" in bot.log()

    line, out = doctor_line(hs.config_path, bot.env, tmp_path, "door")
    assert line.startswith("✗") and "with a wrong token" in line, out
    assert "into homeserver.yaml's synapse_http_antispam entry (authorization)" in line
    (directory,) = [line for line in out.splitlines() if " directory:" in line]
    assert "enable_room_list_search" not in directory, out
