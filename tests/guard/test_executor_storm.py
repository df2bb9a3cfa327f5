"""A storm in one room: kicks of different users go out together (bounded per room), not one
write latency after another, and still each guest once, and the door closed before the first
kick. The homeserver here is scripted to be slow (a worker's replication lag, on cue)."""

from __future__ import annotations

import asyncio
from typing import Any

from devtools.guard_loop import guard_loop
from guardbot import db
from guardbot.core.actions import ForbidGuestAccess, Kick
from guardbot.core.clock import Clock
from guardbot.core.policy import Policy
from guardbot.guard.executor import PER_ROOM
from guardbot.matrix.client import Homeserver
from tests.support.queries import action_history

ROOM = "!storm:example.org"
GUESTS = [f"@{n}:example.org" for n in range(1, 11)]


class SlowHomeserver(Homeserver):
    """Each write takes `lag` seconds; records what happened, in order."""

    def __init__(self, lag: float = 0.2) -> None:
        super().__init__("http://127.0.0.1:1", "as-token", "@guardbot:example.org")
        self.lag = lag
        self.in_flight = 0
        self.most_in_flight = 0
        self.done: list[tuple[str, str]] = []
        self.gone: set[str] = set()

    async def state_event(self, room_id: str, etype: str, state_key: str = "", **kw: Any) -> Any:
        if etype == "m.room.member":
            gone = state_key in self.gone
            content = {"membership": "leave" if gone else "join", "kind": "guest"}
            return {"content": content, "sender": state_key} if kw.get("format_event") else content
        return None  # no guest_access yet

    async def admin_user(self, user_id: str) -> dict[str, Any] | None:
        return {"name": user_id, "is_guest": True, "admin": False}

    async def members(self, room_id: str) -> list[dict[str, Any]]:
        return []

    async def send_state(self, room_id: str, etype: str, content: dict, *a: Any, **k: Any) -> str:
        await asyncio.sleep(self.lag)
        self.done.append(("state", etype))
        return "$state"

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.lag)
        finally:
            self.in_flight -= 1
        self.gone.add(user_id)
        self.done.append(("kick", user_id))


async def test_a_storm_in_one_room_is_cleared_in_parallel_each_guest_once(
    database: db.Database,
) -> None:
    hs = SlowHomeserver()
    guard = await guard_loop(database, hs, listed=[ROOM], policy=Policy.FORBID)
    now = Clock().now_ms()
    actions = [ForbidGuestAccess(ROOM, "$first")]
    actions += [Kick(ROOM, user, "no guests", f"$join{i}") for i, user in enumerate(GUESTS)]
    actions += [Kick(ROOM, GUESTS[0], "no guests", "$rejoin")]  # the same guest, decided twice
    await guard.actions.add(actions, now)

    while await guard.executor.run_once():
        pass

    kicked = [user for what, user in hs.done if what == "kick"]
    assert sorted(kicked) == sorted(GUESTS)  # each once: the second decision found them gone
    assert hs.done[0] == ("state", "m.room.guest_access")  # the door closed before any kick
    assert 1 < hs.most_in_flight <= PER_ROOM
    history = await action_history(guard.actions.db)
    assert {h["state"] for h in history} == {"done", "skipped"}
