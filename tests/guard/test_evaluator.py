"""An observation whose facts the homeserver refuses for good (4xx: guardbot is not in that
room, no such room) is dropped with a warning; only an unreachable or failing homeserver keeps
it for later. Before, any refusal kept the row at the head of the inbox and retried it for
ever, so nothing after it was ever decided: one `dev.guardbot.policy` event in a room guardbot
cannot read (anyone can make one: their own room, a guest in it) stopped all enforcement. Found
by the fault suite's live hostile-input run."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.guard_loop import GuardLoop, guard_loop
from guardbot import db
from guardbot.core.clock import Clock
from guardbot.core.observations import BotMembership, RoomPolicyChange
from guardbot.matrix.client import Homeserver, HomeserverError
from tests.support.queries import action_history

BOT = "@guardbot:example.org"


class RefusingHomeserver(Homeserver):
    """Refuses the facts of one room (its power levels), as scripted; no room is listed."""

    def __init__(self, error: HomeserverError) -> None:
        super().__init__("http://127.0.0.1:1", "as-token", BOT)
        self.error = error

    async def room_power(self, room_id: str) -> Any:
        raise self.error

    async def directory_visibility(self, room_id: str) -> str:
        return "private"


def policy_change() -> RoomPolicyChange:
    return RoomPolicyChange(
        "!unseen:example.org", "$policy", "@mallory:example.org", {"listed_rooms": "off"}
    )


async def evaluator_with(database: db.Database, error: HomeserverError) -> GuardLoop:
    guard = await guard_loop(database, RefusingHomeserver(error))
    now = Clock().now_ms()
    await guard.inbox.add([policy_change()], now)
    invite = BotMembership("!next:example.org", "$invite", "invite", "@alice:example.org")
    await guard.inbox.add([invite], now)
    return guard


@pytest.mark.parametrize("status", [403, 404])
async def test_a_refusal_for_good_does_not_hold_back_the_inbox(
    database: db.Database, status: int
) -> None:
    refusal = HomeserverError(status, "M_FORBIDDEN", "User not in room", {})
    guard = await evaluator_with(database, refusal)
    assert await guard.evaluator.run_once() == 2
    assert await guard.inbox.size() == 0
    queued = await action_history(guard.actions.db)
    assert [(a["kind"], a["room_id"]) for a in queued] == [("JoinRoom", "!next:example.org")]


async def test_an_unreachable_homeserver_keeps_the_row_for_later(database: db.Database) -> None:
    guard = await evaluator_with(database, HomeserverError(0, "M_CONNECTION_FAILED", "down", {}))
    with pytest.raises(HomeserverError):
        await guard.evaluator.run_once()
    assert await guard.inbox.size() == 2
