"""Rooms as the integration and fault tests set them up and watch them: a room guardbot guards,
a member's membership, a guest's removal, a notice from guardbot."""

from __future__ import annotations

import time

from .homeserver import Homeserver
from .matrix_client import User, wait_for


async def listed_room(hs: Homeserver, owner: User, *, listed: bool = True, **kw: object) -> str:
    """A room whose owner invited guardbot with power to kick; returns once guardbot is in."""
    room_id = await owner.create_room(
        listed=listed, invite=[hs.bot_user_id], power={hs.bot_user_id: 50}, **kw
    )
    await wait_for(
        lambda: membership_is(owner, room_id, hs.bot_user_id, "join"),
        what="guardbot to accept the invite",
    )
    return room_id


async def membership_is(viewer: User, room_id: str, user_id: str, membership: str) -> bool:
    return await viewer.membership(room_id, user_id) == membership


async def wait_removed(viewer: User, room_id: str, user_id: str, timeout: float = 30) -> float:
    """Wait until `user_id` has left the room; returns how long that took (for printing)."""
    started = time.monotonic()
    await wait_for(
        lambda: membership_is(viewer, room_id, user_id, "leave"),
        timeout=timeout,
        what=f"{user_id} removed",
    )
    return time.monotonic() - started


async def notice_containing(viewer: User, room_id: str, bot: str, text: str) -> dict:
    async def find() -> dict | None:
        for event in await viewer.timeline(room_id):
            body = event.get("content", {}).get("body", "")
            if event["sender"] == bot and event["type"] == "m.room.message" and text in body:
                return event
        return None

    return await wait_for(find, timeout=20, what=f"a notice saying {text!r}")
