"""Ending the reminders: a password set through guardbot's API or directly on the homeserver,
and a deactivated account, against a real Synapse."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, q, wait_for
from tests.support.pwlu_client import (
    EVERY,
    Api,
    admin_nags,
    admin_reset_password,
    as_user,
    assert_secrets_not_logged,
    dm_room,
    keyring,
    login,
    nags,
    query_db,
    start_pwlu,
    unique,
    wait_for_nags,
)


async def test_password_set_through_the_api_ends_reminders(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__MAX="5")
    api = Api(proc.url)
    registered = await api.register_pwlu(unique("apiset"))
    user = as_user(homeserver, registered)
    user_id = registered["user_id"]
    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, 1)

    # A stock Synapse takes any password; guardbot asks for pwlu.min_password_length (10)
    # and refuses the most common ones.
    status, body = await api.set_password(user.token, "x")
    assert (status, body["errcode"]) == (400, "M_WEAK_PASSWORD") and "10" in body["error"]
    status, body = await api.set_password(user.token, "Password123!")
    assert (status, body["errcode"]) == (400, "M_WEAK_PASSWORD") and "common" in body["error"]
    new_password = "correct horse battery staple 42"
    status, body = await api.set_password(user.token, new_password)
    assert (status, body) == (200, {})
    # A reminder and a password change never overlap: none can follow the answer.
    sent = len(await nags(user, room, homeserver.bot_user_id))
    derived = keyring(homeserver).password(user_id)
    assert await login(homeserver, user_id, new_password) == 200
    assert await login(homeserver, user_id, derived) == 403
    # The user's own session survives (logout_devices: false).
    assert (await user.request("GET", "/_matrix/client/v3/account/whoami"))["user_id"] == user_id
    status_body = await api.status(user.token)
    assert status_body["password_set"] is True and status_body["next_nag_at"] is None

    # Whoever set it (anyone holding the token could), the user is told in their DM.
    async def told() -> bool:
        path = f"/_matrix/client/v3/rooms/{q(room)}/messages?dir=b&limit=20"
        events = (await user.request("GET", path))["chunk"]
        return any(
            e["sender"] == homeserver.bot_user_id
            and "was set by an app signed in as you" in e["content"].get("body", "")
            for e in events
        )

    await wait_for(told, what="the notice that the password was set")

    await asyncio.sleep(EVERY * 2 + 1)
    assert len(await nags(user, room, homeserver.bot_user_id)) == sent
    status, body = await api.set_password(user.token, "another one 123")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
    assert await login(homeserver, user_id, new_password) == 200
    assert_secrets_not_logged(proc, new_password, derived, user.token)


@pytest.mark.parametrize("how", ["admin-reset", "account-password"])
async def test_password_set_on_the_homeserver_ends_reminders(
    homeserver: Homeserver, start_guardbot: StartGuardbot, how: str
) -> None:
    """No API says a password changed: guardbot notices when its own no longer logs in."""
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__MAX="5")
    api = Api(proc.url)
    registered = await api.register_pwlu(unique("hsset"))
    user = as_user(homeserver, registered)
    user_id = registered["user_id"]
    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, 1)
    new_password = "set somewhere else 99"
    if how == "admin-reset":
        await admin_reset_password(homeserver, user_id, new_password)
    else:  # the user's own app, with the user-interactive auth it needs
        path = "/_matrix/client/v3/account/password"
        body: dict = {"new_password": new_password, "logout_devices": False}
        with pytest.raises(MatrixError) as challenge:
            await user.request("POST", path, body)
        assert challenge.value.status == 401
        session = challenge.value.body["session"]
        body["auth"] = {
            "type": "m.login.password",
            "session": session,
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": keyring(homeserver).password(user_id),
        }
        await user.request("POST", path, body)

    async def noticed() -> bool:
        return (await api.status(user.token))["password_set"]

    await wait_for(noticed, timeout=EVERY * 3 + 5, what="guardbot to notice the new password")
    # A reminder already checked and on its way when the password changed may still land;
    # none after guardbot noticed.
    sent = len(await nags(user, room, homeserver.bot_user_id))
    assert sent <= 2
    await asyncio.sleep(EVERY * 2 + 1)
    assert len(await nags(user, room, homeserver.bot_user_id)) == sent
    assert query_db(proc, "SELECT done_reason FROM pwlu WHERE user_id=?", user_id) == [
        ("password set elsewhere",)
    ]


async def test_deactivated_account_gets_no_more_reminders(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__MAX="5")
    registered = await Api(proc.url).register_pwlu(unique("gone"))
    user = as_user(homeserver, registered)
    user_id = registered["user_id"]
    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, 1)
    await homeserver.admin.request(
        "POST", f"/_synapse/admin/v1/deactivate/{user_id}", {"erase": False}
    )

    async def ended() -> bool:
        rows = query_db(proc, "SELECT state, done_reason FROM pwlu WHERE user_id=?", user_id)
        return rows == [("done", "deactivated")]

    await wait_for(ended, timeout=EVERY * 3 + 5, what="reminders to end for a deactivated user")
    sent = len(await admin_nags(homeserver, room))
    await asyncio.sleep(EVERY * 2 + 1)
    assert len(await admin_nags(homeserver, room)) == sent
