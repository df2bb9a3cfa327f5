"""An observation whose facts the homeserver refuses for good (4xx: guardbot is not in that
room, no such room) is dropped with a warning; only an unreachable or failing homeserver keeps
it for later. Before, any refusal kept the row at the head of the inbox and retried it for
ever, so nothing after it was ever decided: one `dev.guardbot.policy` event in a room guardbot
cannot read (anyone can make one: their own room, a guest in it) stopped all enforcement. Found
by the fault suite's live hostile-input run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from guardbot import db
from guardbot.core.clock import now_ms
from guardbot.core.observations import BotMembership, RoomPolicyChange
from guardbot.core.policy import Policy, RoomFacts
from guardbot.guard.evaluator import Evaluator
from guardbot.matrix.client import HomeserverError

BOT = "@guardbot:example.org"


class Settings:
    bot_user_id = BOT

    def __getitem__(self, key: str) -> Any:
        return {"management_room": "", "policy.room_admins_may": ["forbid", "kick"]}[key]


class UnlistedRooms:
    async def facts(self, room_id: str) -> RoomFacts:
        return RoomFacts(room_id, False, Policy.KICK, "reason", "notice", "the server default",
                         False)  # fmt: skip


class RefusingHomeserver:
    def __init__(self, error: HomeserverError) -> None:
        self.error = error

    async def room_power(self, room_id: str) -> Any:
        raise self.error


def policy_change() -> RoomPolicyChange:
    return RoomPolicyChange("!unseen:example.org", "$policy", "@mallory:example.org",
                            {"listed_rooms": "off"})  # fmt: skip


async def evaluator_with(database: db.Database, error: HomeserverError) -> Evaluator:
    actions = db.ActionStore(database)
    inbox = db.InboxStore(database, actions)
    await inbox.add([policy_change()], now_ms())
    await inbox.add([BotMembership("!next:example.org", "$invite", "invite", "@alice:example.org")],
                    now_ms())  # fmt: skip
    hs = RefusingHomeserver(error)
    return Evaluator(Settings(), hs, inbox, actions, UnlistedRooms(), None, asyncio.Event())  # type: ignore[arg-type]


@pytest.mark.parametrize("status", [403, 404])
async def test_a_refusal_for_good_does_not_hold_back_the_inbox(
    database: db.Database, status: int
) -> None:
    refusal = HomeserverError(status, "M_FORBIDDEN", "User not in room", {})
    evaluator = await evaluator_with(database, refusal)
    assert await evaluator.run_once() == 2
    assert await evaluator.inbox.size() == 0
    queued = await evaluator.actions.history()
    assert [(a["kind"], a["room_id"]) for a in queued] == [("JoinRoom", "!next:example.org")]


async def test_an_unreachable_homeserver_keeps_the_row_for_later(database: db.Database) -> None:
    evaluator = await evaluator_with(
        database, HomeserverError(0, "M_CONNECTION_FAILED", "down", {})
    )
    with pytest.raises(HomeserverError):
        await evaluator.run_once()
    assert await evaluator.inbox.size() == 2
