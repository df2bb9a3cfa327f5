"""The durable stores as the database tests use them: one DecisionStore and the stores it
holds, and the observations and actions those tests store."""

from __future__ import annotations

from dataclasses import dataclass

from guardbot import db
from guardbot.core.actions import Kick
from guardbot.core.decision import Decision
from guardbot.core.observations import MemberChange

ROOM = "!room:example.org"
OTHER = "!other:example.org"


def joined(user: str, event_id: str, room: str = ROOM) -> MemberChange:
    return MemberChange(room, user, event_id, "join", None, kind_guest=True)


def kick(user: str = "@1:example.org", cause: str = "$j1", room: str = ROOM) -> Kick:
    return Kick(room, user, "no guests", cause)


@dataclass
class Stores:
    decisions: db.DecisionStore

    @property
    def actions(self) -> db.ActionStore:
        return self.decisions.actions

    @property
    def inbox(self) -> db.InboxStore:
        return self.decisions.inbox

    @property
    def rooms(self) -> db.RoomStore:
        return self.decisions.rooms

    async def settle(self, row_id: int, actions: list, now: int, **kw: object) -> None:
        await self.decisions.settle(row_id, Decision(actions=tuple(actions), **kw), now)


def stores_on(database: db.Database) -> Stores:
    return Stores(db.DecisionStore(database))


async def observations(s: Stores) -> list:
    return [row.observation for row in await s.inbox.take()]
