"""When guardbot cannot act: too little power, no admin rights. It says what is missing, never
removes someone it is not sure about, and acts once it can."""

from __future__ import annotations

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import upgrade_guest, wait_for
from tests.support.pwlu_client import query_db
from tests.support.rooms import membership_is, wait_removed


async def test_too_little_power_is_reported_then_fixed(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    bot = await start_guardbot(POLICY__LISTED_ROOMS="kick")
    alice = await homeserver.user("alice_power")
    room_id = await alice.create_room(listed=True, invite=[homeserver.bot_user_id])
    bot_id = homeserver.bot_user_id
    await wait_for(lambda: membership_is(alice, room_id, bot_id, "join"), what="bot joins")
    guest = await homeserver.guest()
    await guest.join(room_id)

    await wait_for(
        lambda: _logged(bot.log(), f"guardbot lacks power in {room_id}"),
        what="a log line naming the room and the missing power",
    )
    assert await alice.membership(room_id, guest.user_id) == "join"

    levels = await alice.state(room_id, "m.room.power_levels")
    levels["users"][homeserver.bot_user_id] = 50
    await alice.set_state(room_id, "m.room.power_levels", levels)
    # The power change wakes the waiting kick instead of leaving it to its backoff.
    await wait_removed(alice, room_id, guest.user_id, timeout=10)


async def _logged(text: str, needle: str) -> bool:
    return needle in text


async def test_without_admin_rights_only_the_hint_counts(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id, admin=False)
    try:
        bot = await start_guardbot(POLICY__LISTED_ROOMS="kick")
        assert "is NOT a server admin" in bot.log()
        assert "_synapse/admin/v2/users/" in bot.log()  # how to fix it
        alice = await homeserver.user("alice_noadmin")
        room_id = await alice.create_room(
            listed=True, invite=[homeserver.bot_user_id], power={homeserver.bot_user_id: 50}
        )
        bot_id = homeserver.bot_user_id
        await wait_for(lambda: membership_is(alice, room_id, bot_id, "join"), what="join")

        # An upgraded former guest joins without `kind: guest`: not evidence, left alone.
        former = await upgrade_guest(await homeserver.guest())
        await former.join(room_id)
        # An invite carries no hint at all: guardbot cannot tell, so it does nothing.
        invited = await homeserver.guest()
        await alice.invite(room_id, invited.user_id)
        # A guest's own join says kind: guest: that is enough, and it is removed.
        guest = await homeserver.guest()
        await guest.join(room_id)
        await wait_removed(alice, room_id, guest.user_id)

        assert await alice.membership(room_id, former.user_id) == "join"
        assert await alice.membership(room_id, invited.user_id) == "invite"
    finally:
        await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id)


async def test_auto_join_listed_rooms_through_the_admin_api(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    bot = await start_guardbot(POLICY__LISTED_ROOMS="kick", BOT__AUTO_JOIN_LISTED_ROOMS="true")
    alice = await homeserver.user("alice_autojoin")
    # guardbot is given power but never invited.
    room_id = await alice.create_room(listed=True, power={homeserver.bot_user_id: 50})
    guest = await homeserver.guest()
    await guest.join(room_id)

    await wait_removed(alice, room_id, guest.user_id)
    assert await alice.membership(room_id, homeserver.bot_user_id) == "join"
    # The join was decided and done like any action: in the audit log, with its outcome.
    audit = query_db(bot, "SELECT what, result FROM audit WHERE room_id=?", room_id)
    assert ("decide JoinRoom", "queued") in audit, audit
    assert any(what == "JoinRoom" and "joined" in result for what, result in audit), audit


async def test_admin_rights_given_after_the_start_are_noticed(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    """The README's own order: start guardbot, then make it an admin. It must not go on acting
    on hints alone until a restart."""
    await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id, admin=False)
    try:
        bot = await start_guardbot(POLICY__LISTED_ROOMS="kick", BOT__ADMIN_RECHECK="1")
        assert "is NOT a server admin" in bot.log()
        alice = await homeserver.user("alice_later_admin")
        room_id = await alice.create_room(
            listed=True, invite=[homeserver.bot_user_id], power={homeserver.bot_user_id: 50}
        )
        bot_id = homeserver.bot_user_id
        await wait_for(lambda: membership_is(alice, room_id, bot_id, "join"), what="join")

        await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id)
        await wait_for(
            lambda: _logged(bot.log(), "guardbot is now a server admin"), what="the change noticed"
        )
        # An invite carries no hint: only the admin API can tell, and now guardbot asks it.
        invited = await homeserver.guest()
        await alice.invite(room_id, invited.user_id)
        await wait_removed(alice, room_id, invited.user_id)
    finally:
        await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id)
