"""Guests against listed rooms, end to end: real Synapse, real guests, guardbot as a process."""

from __future__ import annotations

import time

import pytest

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, User, upgrade_guest, wait_for
from tests.support.pwlu_client import query_db
from tests.support.rooms import listed_room, wait_removed


async def test_guest_joining_listed_room_is_kicked_with_reason(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await homeserver.user("alice_kick")
    room_id = await listed_room(homeserver, alice)
    guest = await homeserver.guest()

    await guest.join(room_id)
    seconds = await wait_removed(alice, room_id, guest.user_id)

    event = await alice.member_event(room_id, guest.user_id)
    assert event["sender"] == homeserver.bot_user_id  # a kick, not the guest leaving
    assert "Create an account" in event["content"]["reason"]
    # kick policy leaves guest_access alone
    assert (await alice.state(room_id, "m.room.guest_access"))["guest_access"] == "can_join"
    print(f"guest join -> removal: {seconds * 1000:.0f} ms")


async def test_unlisted_room_is_left_alone(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await homeserver.user("alice_unlisted")
    unlisted = await listed_room(homeserver, alice, listed=False)
    listed = await listed_room(homeserver, alice)
    guest = await homeserver.guest()

    await guest.join(unlisted)
    await guest.join(listed)
    # guardbot handles events in order: once the later join is dealt with, so was the first.
    await wait_removed(alice, listed, guest.user_id)
    assert await alice.membership(unlisted, guest.user_id) == "join"


async def test_invited_guest_in_listed_room_is_uninvited(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await homeserver.user("alice_invite")
    room_id = await listed_room(homeserver, alice)
    guest = await homeserver.guest()

    await alice.invite(room_id, guest.user_id)
    await wait_removed(alice, room_id, guest.user_id)
    event = await alice.member_event(room_id, guest.user_id)
    assert event["sender"] == homeserver.bot_user_id


async def test_room_published_later_is_swept(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="kick", DIRECTORY__POLL_INTERVAL=1)
    alice = await homeserver.user("alice_sweep")
    bob = await homeserver.user("bob_sweep")
    room_id = await listed_room(homeserver, alice, listed=False)
    guests = [await homeserver.guest() for _ in range(3)]
    for guest in guests:
        await guest.join(room_id)
    await bob.join(room_id)

    await alice.set_listed(room_id, True)
    started = time.monotonic()
    for guest in guests:
        await wait_removed(alice, room_id, guest.user_id, timeout=20)
    print(f"published -> all 3 guests removed: {(time.monotonic() - started) * 1000:.0f} ms")
    assert await alice.membership(room_id, bob.user_id) == "join"
    assert await alice.membership(room_id, alice.user_id) == "join"


async def test_wrong_hs_token_is_rejected(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    import aiohttp

    bot = await start_guardbot(APPSERVICE__MAX_BODY_SIZE=4096)
    url = bot.url + "/_matrix/app/v1/transactions/t1"
    body = {"events": []}
    async with aiohttp.ClientSession() as session:
        async with session.put(url, json=body) as resp:
            assert resp.status == 401
            assert (await resp.json())["errcode"] == "M_UNAUTHORIZED"
        last = "y" if homeserver.hs_token.endswith("x") else "x"  # one character off
        wrong = {"Authorization": "Bearer " + homeserver.hs_token[:-1] + last}
        async with session.put(url, json=body, headers=wrong) as resp:
            assert resp.status == 403
            assert (await resp.json())["errcode"] == "M_FORBIDDEN"
        right = {"Authorization": "Bearer " + homeserver.hs_token}
        async with session.put(url, data=b"{not json", headers=right) as resp:
            assert resp.status == 400
            assert (await resp.json())["errcode"] == "M_NOT_JSON"
        async with session.put(url, json={"events": {}}, headers=right) as resp:
            assert resp.status == 400
            assert (await resp.json())["errcode"] == "M_BAD_JSON"
        async with session.put(url, data=b"[" * 5000, headers=right) as resp:
            assert resp.status == 413
            assert (await resp.json())["errcode"] == "M_TOO_LARGE"
        async with session.put(url, json=body, headers=right) as resp:
            assert resp.status == 200
            assert await resp.json() == {}


async def test_forbid_closes_room_and_removes_renamed_guest_but_not_upgraded_one(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    bot = await start_guardbot(POLICY__LISTED_ROOMS="forbid")
    alice = await homeserver.user("alice_forbid")
    room_id = await listed_room(homeserver, alice, listed=False)
    plain, renamed, upgraded = [await homeserver.guest() for _ in range(3)]
    for guest in (plain, renamed, upgraded):
        await guest.join(room_id)
    await renamed.set_displayname("no longer says kind: guest")
    await wait_for(  # the homeserver updates the member events after answering
        lambda: _lacks_kind(alice, room_id, renamed.user_id), what="rename to reach the room"
    )
    full = await upgrade_guest(upgraded)
    # The upgraded user's member event still claims to be a guest's.
    assert (await alice.state(room_id, "m.room.member", full.user_id))["kind"] == "guest"

    await alice.set_listed(room_id, True)
    await wait_removed(alice, room_id, plain.user_id, timeout=20)
    await wait_removed(alice, room_id, renamed.user_id, timeout=20)

    assert (await alice.state(room_id, "m.room.guest_access"))["guest_access"] == "forbidden"
    assert await alice.membership(room_id, full.user_id) == "join"
    # Shielded first, as an action of its own, decided and audited like any other.
    audit = query_db(bot, "SELECT what, user_id FROM audit WHERE room_id=?", room_id)
    assert ("decide ShieldFormerGuest", full.user_id) in audit, audit
    assert ("ShieldFormerGuest", full.user_id) in audit, audit
    # The homeserver now refuses guests at the door.
    late = await homeserver.guest()
    with pytest.raises(MatrixError) as refused:
        await late.join(room_id)
    assert refused.value.status == 403


async def test_forbid_restores_guest_access_and_says_why(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="forbid")
    alice = await homeserver.user("alice_restore")
    room_id = await listed_room(homeserver, alice)
    await wait_for(
        lambda: _guest_access_is(alice, room_id, "forbidden"), what="guest_access forbidden"
    )

    await alice.set_state(room_id, "m.room.guest_access", {"guest_access": "can_join"})
    await wait_for(
        lambda: _guest_access_is(alice, room_id, "forbidden"), what="guest_access restored"
    )
    notices = await wait_for(lambda: _notices(alice, room_id), what="guardbot's notice")
    assert len(notices) == 1
    assert "public room directory" in notices[0]["content"]["body"]


async def _lacks_kind(viewer: User, room_id: str, user_id: str) -> bool:
    content = await viewer.state(room_id, "m.room.member", user_id)
    return bool(content) and "kind" not in content


async def _guest_access_is(viewer: User, room_id: str, value: str) -> bool:
    content = await viewer.state(room_id, "m.room.guest_access")
    return bool(content) and content.get("guest_access") == value


async def _notices(viewer: User, room_id: str) -> list[dict]:
    return [
        e
        for e in await viewer.timeline(room_id)
        if e["type"] == "m.room.message" and e["content"].get("msgtype") == "m.notice"
    ]
