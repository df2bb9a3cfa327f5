"""A guest from another server, on two Synapses federating on loopback: their join carries
`kind: guest`, a rename right after does not, and the admin API of their server cannot be
asked. guardbot holds them a guest while the membership their join began lasts: one who joins
and renames at once while guardbot runs is removed, and so is one who did it while guardbot
was down (the backlog's kick, re-checked against the current, renamed, member event)."""

from __future__ import annotations

import pathlib

import pytest

from devtools.local_synapse import LocalSynapse
from tests.support.homeserver import guardbot_starter, running_homeserver
from tests.support.matrix_client import User, q, wait_for
from tests.support.rooms import listed_room, membership_is, wait_removed

pytestmark = pytest.mark.integration

EXTRA = {"enable_registration": True, "enable_registration_without_verification": True}


async def join_over_federation(user: User, room_id: str, server: str) -> None:
    await user.request(
        "POST", f"/_matrix/client/v3/join/{q(room_id)}", {}, query={"server_name": server}
    )


async def rename(user: User, name: str) -> None:
    path = f"/_matrix/client/v3/profile/{q(user.user_id)}/displayname"
    await user.request("PUT", path, {"displayname": name})


async def test_a_remote_guest_who_renames_is_still_removed(tmp_path: pathlib.Path) -> None:
    for part in ("a", "b", "bot"):
        (tmp_path / part).mkdir()
    async with running_homeserver(tmp_path / "a", EXTRA, federation=True) as a:
        b = LocalSynapse(tmp_path / "b" / "synapse", extra_config=EXTRA)
        b.enable_federation()
        await b.start()
        try:
            a_name = a.synapse.server_name
            alice = await a.user("alice")
            carol = User(b.base_url, *await b.register_user("carol", "pw-carol"))
            async with guardbot_starter(a, tmp_path / "bot") as start:
                proc = await start(POLICY__LISTED_ROOMS="kick")
                room_id = await listed_room(a, alice)
                # B lets its guests into rooms it already shares only: carol goes first.
                await join_over_federation(carol, room_id, a_name)
                await wait_for(
                    lambda: membership_is(alice, room_id, carol.user_id, "join"),
                    what="carol in A's room",
                )

                # Up: a join and a rename at once race the kick; the re-check looks back.
                quick = User(b.base_url, *await b.register_guest())
                await join_over_federation(quick, room_id, a_name)
                await rename(quick, "Quick Renamer")
                await wait_removed(alice, room_id, quick.user_id, timeout=60)

                # Down: the join and the rename both wait in the backlog.
                await proc.stop()
                late = User(b.base_url, *await b.register_guest())
                await join_over_federation(late, room_id, a_name)
                await rename(late, "Late Renamer")

                async def renamed_at_a() -> bool:
                    event = await alice.member_event(room_id, late.user_id)
                    content = event.get("content", {}) if event else {}
                    return content.get("displayname") == "Late Renamer"

                await wait_for(renamed_at_a, timeout=60, what="the rename to reach A")
                await start(POLICY__LISTED_ROOMS="kick")
                await wait_removed(alice, room_id, late.user_id, timeout=60)
                event = await alice.member_event(room_id, late.user_id)
                assert event["sender"] == a.bot_user_id
                # carol, no guest, stays.
                assert await alice.membership(room_id, carol.user_id) == "join"
        finally:
            await b.stop()
