"""A room an appservice lists in its own network's directory (what bridges do; clients show it
under that network) counts as listed: a guest who joins it is removed."""

from __future__ import annotations

import aiohttp

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import q
from tests.support.pwlu_client import unique
from tests.support.rooms import listed_room, wait_removed


async def test_a_room_listed_under_an_appservice_network_keeps_guests_out(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await start_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await homeserver.user(unique("alice_network"))
    room_id = await listed_room(homeserver, alice, listed=False)
    path = f"/_matrix/client/v3/directory/list/appservice/irc/{q(room_id)}"
    headers = {"Authorization": f"Bearer {homeserver.as_token}"}
    async with aiohttp.ClientSession() as session:
        async with session.put(
            homeserver.synapse.base_url + path, json={"visibility": "public"}, headers=headers
        ) as resp:
            assert resp.status == 200, await resp.text()
    # Not in the main list: only include_all_networks shows it.
    main = await alice.request("GET", "/_matrix/client/v3/publicRooms")
    assert room_id not in [r["room_id"] for r in main["chunk"]]

    guest = await homeserver.guest()
    await guest.join(room_id)
    await wait_removed(alice, room_id, guest.user_id)
