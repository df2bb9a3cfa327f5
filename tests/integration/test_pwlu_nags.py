"""Reminders to set a password, against a real Synapse: their schedule, their DM, restarts and
crashes in the middle of a send, and the user saying stop or leaving."""

from __future__ import annotations

import asyncio
import time

from guardbot.named_guests.decider import STOP_ANSWER
from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import wait_for
from tests.support.pwlu_client import (
    EVERY,
    FIRST_AFTER,
    MAX,
    Api,
    admin_membership,
    admin_nags,
    as_user,
    assert_secrets_not_logged,
    claim_token,
    dm_room,
    keyring,
    nags,
    query_db,
    start_pwlu,
    unique,
    wait_for_nags,
)


async def test_reminders_follow_the_schedule_and_stop_at_max(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    """The reminders come, in order and none before it is due, and stop at max. How late they
    come is benchmark 4's figure (bench/nags.py), not a bound here: a loaded machine is late."""
    proc = await start_pwlu(start_guardbot, homeserver)
    api = Api(proc.url)
    asked = time.time()
    registered = await api.register_pwlu(unique("sched"))
    user = as_user(homeserver, registered)
    assert registered["user_id"].startswith("@sched-")

    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, MAX, timeout=120)

    async def all_sent() -> bool:
        status = await api.status(registered["access_token"])
        return status["nags_sent"] == MAX and status["next_nag_at"] is None

    await wait_for(all_sent, what="the reminders to end at max")
    await asyncio.sleep(EVERY + 1)  # nothing after the last one
    sent = await nags(user, room, homeserver.bot_user_id)
    assert [e["content"]["dev.guardbot.pwlu_nag"]["n"] for e in sent] == [1, 2, 3]

    # In order, and none before its due time: registration + first_after + (n-1) * every,
    # counted from before registration was asked for (the origin_server_ts has 1 ms steps).
    times = [e["origin_server_ts"] / 1000 for e in sent]
    assert times == sorted(times)
    early = [t - (asked + FIRST_AFTER + k * EVERY) for k, t in enumerate(times)]
    assert all(x >= -0.01 for x in early), early

    nag = sent[0]["content"]
    assert nag["msgtype"] == "m.notice"
    localpart = registered["user_id"][1:].split(":")[0]
    assert nag["body"].startswith(f"Hi {localpart}! If you want to use this username in future")
    assert nag["format"] == "org.matrix.custom.html"
    assert '<a href="http://127.0.0.1:' in nag["formatted_body"]
    assert claim_token(sent[0]) != claim_token(sent[1])

    # One DM, direct, reused for every reminder.
    member = await user.member_event(room, registered["user_id"])
    assert member is not None
    invite = await user.request(
        "GET", f"/_matrix/client/v3/rooms/{room}/event/{member['unsigned']['replaces_state']}"
    )
    assert invite["content"].get("is_direct") is True

    status = await api.status(registered["access_token"])
    assert status == {
        "user_id": registered["user_id"],
        "pwlu": True,
        "password_set": False,
        "nags_sent": 3,
        "next_nag_at": None,
    }
    password = keyring(homeserver).password(registered["user_id"])
    assert_secrets_not_logged(
        proc, password, registered["access_token"], *(claim_token(e) for e in sent)
    )


async def test_restart_between_reminders_neither_repeats_nor_skips(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__EVERY="3s")
    registered = await Api(proc.url).register_pwlu(unique("restart"))
    user = as_user(homeserver, registered)
    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, 1)
    await proc.stop()
    await asyncio.sleep(1)
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__EVERY="3s")
    await wait_for_nags(user, room, homeserver.bot_user_id, MAX, timeout=30)
    await asyncio.sleep(4)
    sent = await nags(user, room, homeserver.bot_user_id)
    assert [e["content"]["dev.guardbot.pwlu_nag"]["n"] for e in sent] == [1, 2, 3]


async def test_stop_ends_reminders_and_is_answered_once(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    api = Api(proc.url)
    registered = await api.register_pwlu(unique("stopper"))
    user = as_user(homeserver, registered)
    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, 1)
    await user.send_text(room, "Stop")

    async def answers() -> list:
        events = await user.timeline(room)
        return [e for e in events if e["content"].get("body") == STOP_ANSWER]

    await wait_for(answers, what="guardbot's answer to stop")
    sent = len(await nags(user, room, homeserver.bot_user_id))  # none may follow the answer
    await user.send_text(room, "stop")
    await asyncio.sleep(EVERY * 2 + 1)
    assert len(await answers()) == 1
    assert len(await nags(user, room, homeserver.bot_user_id)) == sent < MAX
    status = await api.status(registered["access_token"])
    assert status["next_nag_at"] is None and status["password_set"] is False


async def test_leaving_the_dm_gets_one_invite_back_then_no_more(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    registered = await Api(proc.url).register_pwlu(unique("leaver"))
    user = as_user(homeserver, registered)
    bot = homeserver.bot_user_id
    room = await dm_room(user, bot)
    await wait_for_nags(user, room, bot, 1)
    await user.request("POST", f"/_matrix/client/v3/rooms/{room}/leave", {})

    # Invited back once, with the next reminder.
    async def invited_back() -> bool:
        return await admin_membership(homeserver, room, user.user_id) == "invite"

    await wait_for(invited_back, what="the invite back to the DM")
    await user.join(room)
    await wait_for_nags(user, room, bot, 2)
    await user.request("POST", f"/_matrix/client/v3/rooms/{room}/leave", {})

    async def ended() -> bool:
        return query_db(proc, "SELECT done_reason FROM pwlu WHERE user_id=?", user.user_id) == [
            ("left the DM",)
        ]

    await wait_for(ended, what="reminders to end after the second leave")
    sent = len(await admin_nags(homeserver, room))
    await asyncio.sleep(EVERY * 2 + 1)
    assert await admin_membership(homeserver, room, user.user_id) == "leave"  # not dragged back
    assert len(await admin_nags(homeserver, room)) == sent
