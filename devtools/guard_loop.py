"""guardbot wired as the app wires it (guardbot/wiring.py), on a given database and homeserver,
for tests and benchmarks that drive its loops pass by pass."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from guardbot import db
from guardbot.background import Wakeup
from guardbot.config import from_values
from guardbot.core.clock import Clock
from guardbot.core.policy import Policy
from guardbot.guard.directory import Directory
from guardbot.guard.evaluator import Evaluator
from guardbot.guard.executor import Executor
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver
from guardbot.wiring import Parts, wire

BOT = "@guardbot:example.org"
DOMAIN = "example.org"


@dataclass
class GuardLoop:
    parts: Parts

    @property
    def hs(self) -> Homeserver:
        return self.parts.hs

    @property
    def decisions(self) -> db.DecisionStore:
        return self.parts.decisions

    @property
    def actions(self) -> db.ActionStore:
        return self.parts.actions

    @property
    def inbox(self) -> db.InboxStore:
        return self.parts.inbox

    @property
    def directory(self) -> Directory:
        return self.parts.facts.directory

    @property
    def rooms(self) -> RoomFactSource:
        return self.parts.facts.rooms

    @property
    def guests(self) -> GuestOracle:
        return self.parts.facts.guests

    @property
    def evaluator(self) -> Evaluator:
        return self.parts.evaluator

    @property
    def executor(self) -> Executor:
        return self.parts.executor

    @property
    def inbox_wakeup(self) -> Wakeup:
        return self.parts.inbox_wakeup

    @property
    def queue_wakeup(self) -> Wakeup:
        return self.parts.queue_wakeup

    async def run_until_idle(self, passes: int = 100) -> None:
        """Evaluator and executor by turns until neither has anything due."""
        for _ in range(passes):
            if not await self.evaluator.run_once() + await self.executor.run_once():
                return
        raise AssertionError(f"still busy after {passes} passes")


async def guard_loop(
    database: db.Database,
    homeserver: Homeserver | str,
    *,
    listed: Iterable[str] = (),
    policy: Policy = Policy.KICK,
    admin: bool = True,
    auto_join: bool = False,
    clock: Clock | None = None,
    management_room: str = "",
    config: dict[str, Any] | None = None,
) -> GuardLoop:
    """`homeserver`: an address (guardbot's own client is made, as in the app) or a client
    (a fake). `config`: more keys over the example's."""
    values: dict[str, Any] = {
        "homeserver.domain": DOMAIN,
        "homeserver.address": homeserver if isinstance(homeserver, str) else "http://fake",
        "appservice.bot_username": BOT[1:].split(":")[0],
        "appservice.as_token": "as-token",
        "policy.listed_rooms": policy.value,
        "policy.kick_reason": "no guests",
        "policy.restore_notice": "closed again",
        "bot.auto_join_listed_rooms": auto_join,
        "management_room": management_room,
        "directory.poll_interval": 60,
        "directory.page_size": 100,
        **(config or {}),
    }
    hs = None if isinstance(homeserver, str) else homeserver
    parts = wire(from_values(values), database=database, hs=hs, clock=clock)
    now = parts.clock.now_ms()
    for room_id in listed:
        await parts.decisions.rooms.classify(room_id, True, now)
    await parts.facts.directory.load()
    await parts.facts.rooms.load()
    parts.facts.guests.set_admin(admin)
    return GuardLoop(parts)
