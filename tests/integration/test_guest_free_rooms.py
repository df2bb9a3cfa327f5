"""Rooms guests must never be in, listed or not (policy.guest_free_rooms), by room ID and by
alias, joined and invited, on the event path and at the door; and named guests without a
password counted as guests (policy.named_guests: link_only)."""

from __future__ import annotations

import json

import pytest

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, User, q, wait_for
from tests.support.pwlu_client import Api, as_user, pwlu_env, unique
from tests.support.rooms import membership_is, wait_removed


async def guarded_room(hs: Homeserver, owner: User, alias: str | None = None) -> str:
    """An unlisted room that invited guardbot (it joins once it runs), perhaps with an alias."""
    room_id = await owner.create_room(
        listed=False, invite=[hs.bot_user_id], power={hs.bot_user_id: 50}
    )
    if alias:
        body = {"room_id": room_id}
        await owner.request("PUT", f"/_matrix/client/v3/directory/room/{q(alias)}", body)
    return room_id


async def bot_joined(hs: Homeserver, owner: User, *rooms: str) -> None:
    for room_id in rooms:
        await wait_for(
            lambda room_id=room_id: membership_is(owner, room_id, hs.bot_user_id, "join"),
            what="guardbot in the guest-free room",
        )


async def test_guests_are_removed_from_guest_free_rooms_by_id_and_alias(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    alice = await homeserver.user(unique("alice_free"))
    domain = homeserver.bot_user_id.split(":", 1)[1]
    alias = f"#{unique('lobby')}:{domain}"
    by_id = await guarded_room(homeserver, alice)
    by_alias = await guarded_room(homeserver, alice, alias)
    other = await guarded_room(homeserver, alice)  # neither listed nor guest-free
    rooms = json.dumps([by_id, alias])
    await start_guardbot(POLICY__LISTED_ROOMS="kick", POLICY__GUEST_FREE_ROOMS=rooms)
    await bot_joined(homeserver, alice, by_id, by_alias, other)

    joiner, invited = await homeserver.guest(), await homeserver.guest()
    await joiner.join(by_id)
    await wait_removed(alice, by_id, joiner.user_id)
    await alice.invite(by_alias, invited.user_id)
    await wait_removed(alice, by_alias, invited.user_id)
    assert (await alice.member_event(by_alias, invited.user_id))["sender"] == (
        homeserver.bot_user_id
    )
    # A room not named stays as its admins made it; a user with an account stays anywhere.
    welcome = await homeserver.guest()
    await welcome.join(other)
    bob = await homeserver.user(unique("bob_free"))
    await bob.join(by_id)
    sentinel = await homeserver.guest()
    await sentinel.join(by_id)  # guardbot handles events in order: the ones before are done
    await wait_removed(alice, by_id, sentinel.user_id)
    assert await alice.membership(other, welcome.user_id) == "join"
    assert await alice.membership(by_id, bob.user_id) == "join"


async def test_the_door_refuses_guests_at_a_guest_free_room(
    door_homeserver: Homeserver, start_door_guardbot: StartGuardbot
) -> None:
    hs = door_homeserver
    alice = await hs.user(unique("alice_free_door"))
    room_id = await guarded_room(hs, alice)
    await start_door_guardbot(
        POLICY__LISTED_ROOMS="kick", POLICY__GUEST_FREE_ROOMS=json.dumps([room_id])
    )
    await bot_joined(hs, alice, room_id)
    guest = await hs.guest()
    with pytest.raises(MatrixError) as refused:
        await guest.join(room_id)
    assert refused.value.status == 403
    assert await alice.membership(room_id, guest.user_id) is None


async def test_link_only_keeps_passwordless_named_guests_out_until_they_set_one(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    alice = await homeserver.user(unique("alice_link"))
    room_id = await alice.create_room(
        listed=True, invite=[homeserver.bot_user_id], power={homeserver.bot_user_id: 50}
    )
    env = pwlu_env(homeserver, POLICY__LISTED_ROOMS="kick", POLICY__NAMED_GUESTS="link_only")
    proc = await start_guardbot(**env)
    await bot_joined(homeserver, alice, room_id)
    api = Api(proc.url)
    registered = await api.register_pwlu(unique("linkonly"))
    named = as_user(homeserver, registered)
    await named.join(room_id)
    await wait_removed(alice, room_id, named.user_id)

    status, body = await api.set_password(named.token, "now I have my own password 5")
    assert (status, body) == (200, {})
    await named.join(room_id)
    guest = await homeserver.guest()
    await guest.join(room_id)  # a later join, handled after the named guest's
    await wait_removed(alice, room_id, guest.user_id)
    assert await alice.membership(room_id, named.user_id) == "join"
