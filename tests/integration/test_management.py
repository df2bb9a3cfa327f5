"""The server admins' management room: commands answer truthfully; dry-run decides, records
and reports but never acts."""

from __future__ import annotations

import asyncio
import socket

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import User, wait_for
from tests.support.pwlu_client import (
    EVERY,
    Api,
    as_user,
    dm_room,
    nags,
    pwlu_env,
    unique,
    wait_for_nags,
)
from tests.support.rooms import listed_room, membership_is, notice_containing, wait_removed


async def say(user: User, room_id: str, text: str) -> None:
    await user.send_text(room_id, text)


async def test_management_room_commands_and_dry_run(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    admin, bot_id = homeserver.admin, homeserver.bot_user_id
    alice = await homeserver.user("alice_mgmt")
    mgmt = await admin.create_room(
        listed=False,
        guest_access="forbidden",
        power={alice.user_id: 50},  # alice may invite
    )
    bot = await start_guardbot(POLICY__LISTED_ROOMS="kick", MANAGEMENT_ROOM=mgmt)

    # Only a server admin's invite makes guardbot join the management room.
    await admin.invite(mgmt, alice.user_id)
    await alice.join(mgmt)
    await alice.invite(mgmt, bot_id)
    await wait_for(
        lambda: _contains(
            bot.log(), f"Ignoring an invite to the management room from {alice.user_id}"
        ),
        what="the non-admin's invite to be refused",
    )
    assert await admin.membership(mgmt, bot_id) == "invite"
    await admin.request("POST", f"/_matrix/client/v3/rooms/{mgmt}/kick", {"user_id": bot_id})
    await admin.invite(mgmt, bot_id)
    await wait_for(
        lambda: membership_is(admin, mgmt, bot_id, "join"), what="guardbot in the management room"
    )

    room_id = await listed_room(homeserver, alice)

    await say(admin, mgmt, "status")
    status = (await notice_containing(admin, mgmt, bot_id, "guardbot status"))["content"]["body"]
    assert "server admin rights: yes" in status
    assert "dry-run everywhere: off" in status
    assert bot.proc is not None  # the one process, leading since it started
    assert f"acting: {socket.gethostname()} pid {bot.proc.pid}, term 1" in status

    await say(admin, mgmt, "dryrun on")
    await notice_containing(admin, mgmt, bot_id, "Dry-run is now on everywhere")
    guest = await homeserver.guest()
    await guest.join(room_id)
    report = await notice_containing(admin, mgmt, bot_id, "dry-run: would remove guest")
    assert guest.user_id in report["content"]["body"]
    assert await alice.membership(room_id, guest.user_id) == "join"  # decided, not done

    await say(admin, mgmt, f"explain {guest.user_id} {room_id}")
    explained = await notice_containing(admin, mgmt, bot_id, f"{guest.user_id} in {room_id}")
    body = explained["content"]["body"]
    assert "guest: guest" in body and "room listed: yes" in body
    assert "verdict: no — dry-run is on for this room" in body
    assert "dry_run: dry-run: would remove guest" in body  # from the audit log

    await say(admin, mgmt, f"explain {alice.user_id} {room_id}")
    about_alice = await notice_containing(admin, mgmt, bot_id, f"{alice.user_id} in {room_id}")
    assert "guest: not_guest" in about_alice["content"]["body"]

    await say(admin, mgmt, "dryrun off")
    await notice_containing(admin, mgmt, bot_id, "Dry-run is now off")
    await say(admin, mgmt, f"sweep {room_id}")
    await notice_containing(admin, mgmt, bot_id, f"Sweeping {room_id}")
    await wait_removed(alice, room_id, guest.user_id)
    await notice_containing(admin, mgmt, bot_id, f"removed guest {guest.user_id}")

    await say(admin, mgmt, "rooms")
    rooms = await notice_containing(admin, mgmt, bot_id, "Listed rooms (")
    assert f"{room_id}: kick (from the server default)" in rooms["content"]["body"]


async def _contains(text: str, needle: str) -> bool:
    return needle in text


async def test_pwlu_list_and_forget(homeserver: Homeserver, start_guardbot: StartGuardbot) -> None:
    admin, bot_id = homeserver.admin, homeserver.bot_user_id
    mgmt = await admin.create_room(listed=False, guest_access="forbidden")
    bot = await start_guardbot(**pwlu_env(homeserver, PWLU__NAG__MAX="5"), MANAGEMENT_ROOM=mgmt)
    await admin.invite(mgmt, bot_id)
    await wait_for(
        lambda: membership_is(admin, mgmt, bot_id, "join"), what="guardbot in the management room"
    )

    registered = await Api(bot.url).register_pwlu(unique("listed"))
    user = as_user(homeserver, registered)
    room = await dm_room(user, bot_id)
    await wait_for_nags(user, room, bot_id, 1, timeout=30)

    await say(admin, mgmt, "pwlu list")
    listing = await notice_containing(admin, mgmt, bot_id, "Named guests (")
    assert f"{registered['user_id']}: no password yet" in listing["content"]["body"]

    # A named guest's story: registered, each reminder with its time.
    await say(admin, mgmt, f"explain {registered['user_id']}")
    story = (await notice_containing(admin, mgmt, bot_id, "named guest: registered"))["content"]
    assert "Remind: reminder 1 fell due (done: reminder 1 of 5 sent" in story["body"], story["body"]
    await say(admin, mgmt, "explain @nobody:localhost")
    await notice_containing(admin, mgmt, bot_id, "@nobody:localhost is not a named guest")

    await say(admin, mgmt, f"pwlu forget {registered['user_id']}")
    await notice_containing(admin, mgmt, bot_id, f"Forgot {registered['user_id']}")
    before = len(await nags(user, room, bot_id))
    await asyncio.sleep(EVERY * 2 + 1)  # two more would be due by now
    assert len(await nags(user, room, bot_id)) == before
