"""Helpers for the named-guest (PWLU) tests: guardbot's PWLU API as a client sees it, the DM
as the named guest sees it, and the secrets that must never reach guardbot's log."""

from __future__ import annotations

import html
import re
import secrets
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from guardbot.config import Config
from guardbot.named_guests.carrier import REMINDER_MARK
from guardbot.named_guests.passwords import KeyRing

from .homeserver import GuardbotProcess, Homeserver, StartGuardbot
from .matrix_client import User, q, wait_for

# Short enough for a test to watch a whole schedule.
FIRST_AFTER, EVERY, MAX = 1.0, 2.0, 3
LINK = re.compile(r"https?://\S+/_guardbot/claim/([A-Za-z0-9_-]+)")


def unique(name: str) -> str:
    return f"{name}-{secrets.token_hex(3)}"


def pwlu_env(hs: Homeserver, **overrides: object) -> dict[str, object]:
    env: dict[str, object] = {
        "PWLU__ENABLED": "true",
        "PWLU__PUBLIC_URL": f"http://127.0.0.1:{hs.guardbot_port}",
        "PWLU__NAG__FIRST_AFTER": f"{FIRST_AFTER}s",
        "PWLU__NAG__EVERY": f"{EVERY}s",
        "PWLU__NAG__MAX": str(MAX),
        "PWLU__RATE_LIMIT__PER_SECOND": "100",
        "PWLU__RATE_LIMIT__BURST_COUNT": "1000",
    }
    env.update(overrides)
    return env


async def start_pwlu(start: StartGuardbot, hs: Homeserver, **overrides: object) -> GuardbotProcess:
    return await start(**pwlu_env(hs, **overrides))


def keyring(hs: Homeserver) -> KeyRing:
    config = Config(str(hs.config_path))
    config.load()
    return KeyRing(config["pwlu.secret"])


class Api:
    """guardbot's /_guardbot/ endpoints, answering (status, JSON body)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        raw: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        h = dict(headers or {})
        if token:
            h["Authorization"] = f"Bearer {token}"
        kwargs: dict[str, Any] = {"data": raw} if raw is not None else {"json": body}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base_url + path, headers=h, **kwargs) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def register(self, body: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        return await self.call("POST", "/_guardbot/v1/pwlu/register", body, **kw)

    async def register_pwlu(self, username: str, **extra: Any) -> dict[str, Any]:
        """Register through guardbot, completing the homeserver's dummy stage like a client."""
        status, body = await self.register({"username": username, **extra})
        if status == 401:
            auth = {"type": "m.login.dummy", "session": body["session"]}
            status, body = await self.register({"username": username, "auth": auth, **extra})
        assert status == 200, body
        return body

    async def status(self, token: str) -> dict[str, Any]:
        status, body = await self.call("GET", "/_guardbot/v1/pwlu/status", token=token)
        assert status == 200, body
        return body

    async def set_password(self, token: str, password: str) -> tuple[int, dict[str, Any]]:
        return await self.call(
            "POST", "/_guardbot/v1/pwlu/password", {"new_password": password}, token=token
        )


def as_user(hs: Homeserver, registered: dict[str, Any]) -> User:
    return User(hs.synapse.base_url, registered["user_id"], registered["access_token"])


async def dm_room(user: User, bot_user_id: str, timeout: float = 30) -> str:
    """The room guardbot invited the user to (joined on the user's behalf). Incremental sync:
    Synapse caches identical initial syncs for minutes."""
    since: str | None = None

    async def invited() -> str | None:
        nonlocal since
        query = {"timeout": "0"} | ({"since": since} if since else {})
        data = await user.request("GET", "/_matrix/client/v3/sync", query=query)
        since = data["next_batch"]
        return await dm_in_sync(user, bot_user_id, data)

    return await wait_for(invited, timeout=timeout, what=f"a DM from guardbot to {user.user_id}")


async def dm_in_sync(user: User, bot_user_id: str, data: dict[str, Any]) -> str | None:
    """The DM guardbot invited the user to (joined on their behalf) or shares with them, as
    one /sync answer shows it; None if it shows none."""
    rooms = data.get("rooms", {})
    for room_id, room in rooms.get("invite", {}).items():
        events = room.get("invite_state", {}).get("events", [])
        if any(e.get("sender") == bot_user_id for e in events):
            await user.join(room_id)
            return room_id
    for room_id in rooms.get("join", {}):
        if await user.membership(room_id, bot_user_id) == "join":
            return room_id
    return None


async def nags(user: User, room_id: str, bot_user_id: str) -> list[dict[str, Any]]:
    events = await user.timeline(room_id)
    return [e for e in events if e["sender"] == bot_user_id and REMINDER_MARK in e["content"]]


async def wait_for_nags(
    user: User, room_id: str, bot_user_id: str, count: int, timeout: float = 30
) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        found = await nags(user, room_id, bot_user_id)
        return found if len(found) >= count else None

    return await wait_for(enough, timeout=timeout, what=f"{count} reminder(s)")


async def admin_membership(hs: Homeserver, room_id: str, user_id: str) -> str | None:
    """A membership seen through the admin API (works after the user has left)."""
    data = await hs.admin.request("GET", f"/_synapse/admin/v1/rooms/{q(room_id)}/state")
    for event in data["state"]:
        if event["type"] == "m.room.member" and event["state_key"] == user_id:
            return event["content"]["membership"]
    return None


async def admin_nags(hs: Homeserver, room_id: str) -> list[dict[str, Any]]:
    data = await hs.admin.request(
        "GET", f"/_synapse/admin/v1/rooms/{q(room_id)}/messages", query={"dir": "f", "limit": "500"}
    )
    return [
        e for e in data["chunk"] if e["sender"] == hs.bot_user_id and REMINDER_MARK in e["content"]
    ]


def claim_token(nag: dict[str, Any]) -> str:
    found = LINK.search(nag["content"]["body"])
    assert found, nag["content"]["body"]
    return found.group(1)


async def login(hs: Homeserver, user_id: str, password: str) -> int:
    """The status of a password login (200 works, 403 refused)."""
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(hs.synapse.base_url + "/_matrix/client/v3/login", json=body) as resp,
    ):
        if resp.status == 200:
            token = (await resp.json())["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            async with session.post(
                hs.synapse.base_url + "/_matrix/client/v3/logout", json={}, headers=auth
            ):
                pass
        return resp.status


async def admin_reset_password(hs: Homeserver, user_id: str, password: str) -> None:
    """The user sets a password outside guardbot (here: through a server admin)."""
    path = f"/_synapse/admin/v1/reset_password/{q(user_id)}"
    await hs.admin.request("POST", path, {"new_password": password, "logout_devices": False})


def edit_db(proc: GuardbotProcess, sql: str, *args: Any) -> None:
    """Change guardbot's SQLite database while it is stopped (to stage a crash's leftovers)."""
    path = Path(proc.env["GUARDBOT_DATABASE"].removeprefix("sqlite:"))
    with sqlite3.connect(path) as conn:
        conn.execute(sql, args)


def query_db(proc: GuardbotProcess, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    path = Path(proc.env["GUARDBOT_DATABASE"].removeprefix("sqlite:"))
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, args).fetchall()


def assert_secrets_not_logged(proc: GuardbotProcess, *values: str) -> None:
    log = proc.log()
    assert log, "no log captured"
    for value in values:
        assert value and value not in log, "a password or token reached guardbot's log"


def now() -> float:
    return time.time()


async def submit_claim(link: str, password: str) -> tuple[int, str]:
    """The claim page as a browser uses it, without one: open the link (its CSRF cookie and
    field), then send the form. The answer's status and page."""
    # unsafe: keep cookies for an IP address (the test's 127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(link) as resp:
            page = await resp.text()
            if resp.status != 200:
                return resp.status, page
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        assert found, page
        form = {
            "csrf": html.unescape(found.group(1)),
            "new_password": password,
            "confirm_password": password,
        }
        async with session.post(link, data=form) as resp:
            return resp.status, await resp.text()


async def name_someone_elses_account(api: Api, localpart: str, rounds: int) -> None:
    """The attack of issue 16: a stranger names an existing account at the named-guest API,
    in a first step and in a step with auth (a real session, from a free name), `rounds` times;
    each is refused as in use."""
    for _ in range(rounds):
        assert (await api.register({"username": localpart}))[1]["errcode"] == "M_USER_IN_USE"
        status, challenge = await api.register({"username": unique("free")})
        assert status == 401
        auth = {"type": "m.login.dummy", "session": challenge["session"]}
        status, body = await api.register({"username": localpart, "auth": auth})
        assert body["errcode"] == "M_USER_IN_USE", body
