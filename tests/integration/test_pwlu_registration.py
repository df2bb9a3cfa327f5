"""Registering named guests through guardbot against a real Synapse: its user-interactive auth
and refusals passed through, bad bodies and rate limits as Matrix errors, a guest's rooms
carried over, and an account made just before a crash found again."""

from __future__ import annotations

import time

import aiohttp
import pytest

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.matrix_client import MatrixError, User, wait_for
from tests.support.pwlu_client import (
    Api,
    as_user,
    assert_secrets_not_logged,
    dm_room,
    edit_db,
    keyring,
    login,
    query_db,
    start_pwlu,
    unique,
    wait_for_nags,
)

REGISTER = "/_guardbot/v1/pwlu/register"


async def synapse_register(hs: Homeserver, body: dict) -> tuple[int, dict]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(hs.synapse.base_url + "/_matrix/client/v3/register", json=body) as resp,
    ):
        return resp.status, await resp.json()


async def test_user_interactive_auth_passes_through(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    api = Api(proc.url)
    name = unique("Named")  # the homeserver lowercases it; so must the password's derivation
    status, challenge = await api.register({"username": name})
    assert status == 401
    assert challenge["flows"] == [{"stages": ["m.login.dummy"]}]
    assert set(challenge) >= {"session", "flows", "params"}
    # A stage the homeserver does not offer: its own refusal, untouched.
    status, body = await api.register(
        {"username": name, "auth": {"type": "m.login.bogus", "session": challenge["session"]}}
    )
    assert status == 400 and body["errcode"] == "M_INVALID_PARAM"  # Synapse's word for it
    auth = {"type": "m.login.dummy", "session": challenge["session"]}
    status, body = await api.register(
        {"username": name, "auth": auth, "initial_device_display_name": "Test phone"}
    )
    assert status == 200, body
    user_id = f"@{name.lower()}:{homeserver.synapse.server_name}"
    assert body["user_id"] == user_id and body["home_server"] == homeserver.synapse.server_name
    assert body["device_id"] and body["access_token"]
    assert "rooms_carried_over" not in body  # only with a guest_access_token

    user = as_user(homeserver, body)
    assert (await user.request("GET", "/_matrix/client/v3/account/whoami"))["user_id"] == user_id
    devices = (await user.request("GET", "/_matrix/client/v3/devices"))["devices"]
    assert [d["display_name"] for d in devices] == ["Test phone"]
    password = keyring(homeserver).password(user_id)
    assert await login(homeserver, user_id, password) == 200
    status_body = await api.status(body["access_token"])
    assert status_body["pwlu"] is True and status_body["password_set"] is False
    assert status_body["next_nag_at"] is not None
    assert_secrets_not_logged(proc, password, body["access_token"])


async def test_homeserver_refusals_come_back_as_it_gave_them(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    api = Api(proc.url)
    taken = await homeserver.user(unique("taken"))
    for username in (taken.user_id[1:].split(":")[0], "bad name", "12345", "guardbot"):
        direct = await synapse_register(homeserver, {"username": username, "password": "p-1a!"})
        via = await api.register({"username": username})
        assert via == direct, username
    assert (await api.register({"username": "guardbot"}))[1]["errcode"] == "M_EXCLUSIVE"
    assert (await api.register({"username": "12345"}))[1]["errcode"] == "M_INVALID_USERNAME"


async def test_bad_requests_get_matrix_error_json(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    api = Api(proc.url)
    cases = [
        (dict(raw=b"{not json"), 400, "M_NOT_JSON"),
        (dict(raw=b"[]"), 400, "M_BAD_JSON"),
        (dict(raw=b'{"username": "\\ud800x"}'), 400, "M_INVALID_USERNAME"),  # the homeserver's
        (dict(body={}), 400, "M_BAD_JSON"),
        (dict(body={"username": 5}), 400, "M_BAD_JSON"),
        (dict(body={"username": "x" * 300}), 400, "M_BAD_JSON"),
        (dict(body={"username": "ok", "auth": "dummy"}), 400, "M_BAD_JSON"),
        (dict(body={"username": "ok", "guest_access_token": ""}), 400, "M_BAD_JSON"),
        (dict(body={"username": "ok", "password": "mine"}), 400, "M_INVALID_PARAM"),
        (dict(body={"username": "ok", "guest_access_token": "nope"}), 403, "M_FORBIDDEN"),
    ]
    for kwargs, status, errcode in cases:
        got_status, body = await api.register(**kwargs)
        assert (got_status, body.get("errcode")) == (status, errcode), kwargs
        assert isinstance(body.get("error"), str)

    status, body = await api.call("GET", "/_guardbot/v1/pwlu/status")
    assert (status, body["errcode"]) == (401, "M_MISSING_TOKEN")
    status, body = await api.call("GET", "/_guardbot/v1/pwlu/status", token="bogus")
    assert (status, body["errcode"]) == (401, "M_UNKNOWN_TOKEN")
    status, body = await api.call("GET", REGISTER)
    assert (status, body["errcode"]) == (405, "M_UNRECOGNIZED")
    status, body = await api.call("GET", "/_guardbot/v1/pwlu/nothing")
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")

    user = await homeserver.user(unique("plain"))
    status, body = await api.call("POST", "/_guardbot/v1/pwlu/password", raw=b"x", token=user.token)
    assert (status, body["errcode"]) == (400, "M_NOT_JSON")
    status, body = await api.call("POST", "/_guardbot/v1/pwlu/password", {}, token=user.token)
    assert (status, body["errcode"]) == (400, "M_MISSING_PARAM")
    status, body = await api.set_password(user.token, "new-password-123")
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")  # not a named guest
    guest = await homeserver.guest()
    status, body = await api.set_password(guest.token, "new-password-123")
    assert (status, body["errcode"]) == (403, "M_GUEST_ACCESS_FORBIDDEN")
    assert (await api.status(guest.token))["pwlu"] is False
    assert await api.status(user.token) == {
        "user_id": user.user_id,
        "pwlu": False,
        "password_set": True,
        "nags_sent": 0,
        "next_nag_at": None,
    }

    # Web clients on other origins may call it.
    async with (
        aiohttp.ClientSession() as session,
        session.options(proc.url + REGISTER, headers={"Origin": "https://app.example"}) as resp,
    ):
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_pwlu_off_serves_no_pwlu_routes(start_guardbot: StartGuardbot) -> None:
    proc = await start_guardbot()
    status, body = await Api(proc.url).register({"username": "nobody"})
    assert (status, body["errcode"]) == (404, "M_UNRECOGNIZED")


async def test_rate_limit_per_client_behind_trusted_proxies(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(
        start_guardbot,
        homeserver,
        PWLU__RATE_LIMIT__PER_SECOND="0.01",
        PWLU__RATE_LIMIT__BURST_COUNT="2",
        PWLU__TRUSTED_PROXIES="[127.0.0.1/32]",
    )
    api = Api(proc.url)
    first = {"X-Forwarded-For": "198.51.100.1"}
    for _ in range(2):
        status, _body = await api.register({"username": unique("rl")}, headers=first)
        assert status == 401  # the homeserver's challenge: let through
    status, body = await api.register({"username": unique("rl")}, headers=first)
    assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED"
    assert 90_000 <= body["retry_after_ms"] <= 100_000  # one request at 0.01/s
    # Bad bodies count too: the limit comes before anything else.
    status, body = await api.register(raw=b"junk", headers=first)
    assert status == 429 and body["errcode"] == "M_LIMIT_EXCEEDED"
    # Another client behind the same proxy has its own allowance.
    other = {"X-Forwarded-For": "1.2.3.4, 198.51.100.2"}
    status, _body = await api.register({"username": unique("rl")}, headers=other)
    assert status == 401


async def test_a_guests_rooms_carry_over(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    owner = await homeserver.user(unique("owner"))
    open_room = await owner.create_room(listed=False)
    closed_room = await owner.create_room(listed=False)
    await owner.set_state(closed_room, "m.room.join_rules", {"join_rule": "invite"})
    guest = await homeserver.guest()
    await guest.join(open_room)
    await owner.invite(closed_room, guest.user_id)
    await guest.join(closed_room)

    registered = await Api(proc.url).register_pwlu(
        unique("carried"), guest_access_token=guest.token
    )
    assert registered["rooms_carried_over"] == [open_room]
    assert registered["rooms_not_carried_over"] == [closed_room]  # needs an invite
    assert await owner.membership(open_room, registered["user_id"]) == "join"
    assert await owner.membership(open_room, guest.user_id) == "leave"
    assert await owner.membership(closed_room, guest.user_id) == "join"  # kept what it had
    assert_secrets_not_logged(proc, guest.token, registered["access_token"])

    user = await homeserver.user(unique("notguest"))
    status, body = await Api(proc.url).register(
        {"username": unique("x"), "guest_access_token": user.token}
    )
    assert (status, body["errcode"]) == (403, "M_FORBIDDEN")


async def test_account_made_just_before_a_crash_is_found_again(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    """guardbot records the registration, the homeserver creates the account, and guardbot
    dies before hearing back: on restart the account is recognised by its password."""
    proc = await start_pwlu(start_guardbot, homeserver)
    await proc.kill()
    name = unique("orphan")
    user_id = f"@{name}:{homeserver.synapse.server_name}"
    keys = keyring(homeserver)
    # The step went out just now (its row says when), and the account appeared right after.
    edit_db(
        proc,
        "INSERT INTO pwlu (user_id, key_id, state, created_at, attempted_at, next_nag_at)"
        " VALUES (?, ?, 'unconfirmed', ?, ?, 0)",
        user_id,
        keys.current,
        int(time.time() * 1000),
        int(time.time() * 1000),
    )
    body = {"username": name, "password": keys.password(user_id)}
    status, challenge = await synapse_register(homeserver, body)
    status, created = await synapse_register(
        homeserver, {**body, "auth": {"type": "m.login.dummy", "session": challenge["session"]}}
    )
    assert status == 200
    # And one whose registration never happened is dropped, not nagged.
    ghost = f"@{unique('ghost')}:{homeserver.synapse.server_name}"
    edit_db(
        proc,
        "INSERT INTO pwlu (user_id, key_id, state, created_at, next_nag_at)"
        " VALUES (?, ?, 'unconfirmed', 0, 0)",
        ghost,
        keys.current,
    )

    # And one naming an account someone made before guardbot's step: not ours, and no
    # password of guardbot's is ever tried on it.
    someone = await homeserver.user(unique("someone"))
    later = int(time.time() * 1000) + 60_000
    edit_db(
        proc,
        "INSERT INTO pwlu (user_id, key_id, state, created_at, attempted_at, next_nag_at)"
        " VALUES (?, ?, 'unconfirmed', ?, ?, 0)",
        someone.user_id,
        keys.current,
        later,
        later,
    )

    proc = await start_pwlu(start_guardbot, homeserver)
    user = User(homeserver.synapse.base_url, user_id, created["access_token"])
    room = await dm_room(user, homeserver.bot_user_id)
    await wait_for_nags(user, room, homeserver.bot_user_id, 1)
    assert (await Api(proc.url).status(user.token))["pwlu"] is True

    async def ghost_dropped() -> bool:
        return not query_db(proc, "SELECT 1 FROM pwlu WHERE user_id=?", ghost)

    await wait_for(ghost_dropped, what="the row of a registration that never happened to go")

    async def someone_dropped() -> bool:
        return not query_db(proc, "SELECT 1 FROM pwlu WHERE user_id=?", someone.user_id)

    await wait_for(someone_dropped, what="the row naming someone else's account to go")
    synapse_log = homeserver.synapse.log_path.read_text(errors="replace")
    assert f"Failed password login for user {someone.user_id}" not in synapse_log
    with pytest.raises(MatrixError):
        await homeserver.admin.request("GET", f"/_synapse/admin/v2/users/{ghost}")
