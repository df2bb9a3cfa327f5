"""A tiny client-server API client for driving real users and guests in the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import aiohttp


def q(value: str) -> str:
    return quote(value, safe="")


class MatrixError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.errcode = body.get("errcode")
        self.body = body


class User:
    def __init__(self, base_url: str, user_id: str, token: str) -> None:
        self.base_url = base_url
        self.user_id = user_id
        self.token = token

    async def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.base_url + path, json=body, params=query, headers=headers
            ) as resp,
        ):
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise MatrixError(resp.status, data or {})
            return data

    async def create_room(
        self,
        *,
        listed: bool,
        guest_access: str = "can_join",
        invite: list[str] = (),
        power: dict[str, int] | None = None,
        state: list[dict[str, Any]] = (),
    ) -> str:
        body: dict[str, Any] = {
            "preset": "public_chat",
            "visibility": "public" if listed else "private",
            "invite": list(invite),
            "initial_state": [
                {
                    "type": "m.room.guest_access",
                    "state_key": "",
                    "content": {"guest_access": guest_access},
                },
                *state,
            ],
        }
        if power:
            body["power_level_content_override"] = {"users": power}
        return (await self.request("POST", "/_matrix/client/v3/createRoom", body))["room_id"]

    async def upgrade(self, room_id: str, version: str = "12") -> str:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/upgrade"
        return (await self.request("POST", path, {"new_version": version}))["replacement_room"]

    async def set_listed(self, room_id: str, listed: bool) -> None:
        visibility = "public" if listed else "private"
        path = f"/_matrix/client/v3/directory/list/room/{q(room_id)}"
        await self.request("PUT", path, {"visibility": visibility})

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})

    async def invite(self, room_id: str, user_id: str) -> None:
        await self.request(
            "POST", f"/_matrix/client/v3/rooms/{q(room_id)}/invite", {"user_id": user_id}
        )

    async def set_displayname(self, name: str) -> None:
        path = f"/_matrix/client/v3/profile/{q(self.user_id)}/displayname"
        await self.request("PUT", path, {"displayname": name})

    async def state(self, room_id: str, etype: str, key: str = "") -> dict[str, Any] | None:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(etype)}/{q(key)}"
        try:
            return await self.request("GET", path)
        except MatrixError as e:
            if e.status == 404:
                return None
            raise

    async def set_state(
        self, room_id: str, etype: str, content: dict[str, Any], key: str = ""
    ) -> None:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(etype)}/{q(key)}"
        await self.request("PUT", path, content)

    async def member_event(self, room_id: str, user_id: str) -> dict[str, Any] | None:
        """The full current member event (with sender), from the room's state."""
        events = await self.request("GET", f"/_matrix/client/v3/rooms/{q(room_id)}/state")
        for event in events:
            if event["type"] == "m.room.member" and event["state_key"] == user_id:
                return event
        return None

    async def membership(self, room_id: str, user_id: str) -> str | None:
        content = await self.state(room_id, "m.room.member", user_id)
        return content.get("membership") if content else None

    async def timeline(self, room_id: str, limit: int = 1000) -> list[dict[str, Any]]:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages"
        data = await self.request("GET", path, query={"dir": "f", "limit": str(limit)})
        return data["chunk"]

    async def send_text(self, room_id: str, text: str) -> None:
        txn = f"t{time.time_ns()}"
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/send/m.room.message/{txn}"
        await self.request("PUT", path, {"msgtype": "m.text", "body": text})


async def wait_for(
    check: Callable[[], Awaitable[Any]], *, timeout: float = 30, what: str = "condition"
) -> Any:
    """Poll until check() returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def upgrade_guest(guest: User, password: str = "a-real-password-123") -> User:
    """Turn a guest into a full account with the same (numeric) user ID."""
    localpart = guest.user_id[1:].split(":", 1)[0]
    body = {"username": localpart, "password": password, "guest_access_token": guest.token}
    anon = User(guest.base_url, guest.user_id, "")
    try:
        data = await anon.request("POST", "/_matrix/client/v3/register", body)
    except MatrixError as e:
        if e.status != 401:
            raise
        body["auth"] = {"type": "m.login.dummy", "session": e.body["session"]}
        data = await anon.request("POST", "/_matrix/client/v3/register", body)
    assert data["user_id"] == guest.user_id
    return User(guest.base_url, data["user_id"], data["access_token"])
