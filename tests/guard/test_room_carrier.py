"""A guest kicked and upgraded at once (an upgrade sends no event), then back in the room:
the next decision about them asks the homeserver again, instead of trusting the "guest"
answer of the kick a moment ago. Found by the PostgreSQL-restart storm: a full account
kicked within a second of its upgrade."""

from __future__ import annotations

from typing import Any

from devtools.guard_loop import guard_loop
from guardbot import db
from guardbot.core.actions import Kick
from guardbot.core.clock import Clock
from guardbot.matrix.client import Homeserver
from tests.support.queries import action_history

ROOM, USER = "!room:example.org", "@42:example.org"


class UpgradingHomeserver(Homeserver):
    """The user is a guest until their first kick, a full account from then on."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1", "as-token", "@guardbot:example.org")
        self.kicks = 0
        self.asked = 0

    async def state_event(self, room_id: str, etype: str, state_key: str = "", **kw: Any) -> Any:
        content = {"membership": "join", "kind": "guest"}  # the old hint stays on the event
        return {"content": content, "sender": state_key} if kw.get("format_event") else content

    async def admin_user(self, user_id: str) -> dict[str, Any] | None:
        self.asked += 1
        return {"name": user_id, "is_guest": self.kicks == 0, "admin": False}

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        self.kicks += 1


async def test_a_guest_upgraded_right_after_its_kick_is_not_kicked_again(
    database: db.Database,
) -> None:
    hs = UpgradingHomeserver()
    guard = await guard_loop(database, hs, listed=[ROOM])
    now = Clock().now_ms()
    await guard.actions.add([Kick(ROOM, USER, "no guests", "$join")], now)
    await guard.executor.run_once()
    assert hs.kicks == 1
    # Back in at once, as a full account: decided (say from a sweep) within the same second.
    await guard.actions.add([Kick(ROOM, USER, "no guests", "$join-again")], now)
    await guard.executor.run_once()
    assert hs.kicks == 1, "a full account was kicked on the guest answer of its last kick"
    assert hs.asked == 2
    states = [h["state"] for h in await action_history(guard.actions.db)]
    assert sorted(states) == ["done", "skipped"]
