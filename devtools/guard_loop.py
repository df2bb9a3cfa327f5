"""The guard loop wired as app.py wires it (real stores, fact sources, evaluator and executor),
on a given database and homeserver, for tests and benchmarks that drive it pass by pass."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.decision import Record
from guardbot.core.policy import Policy, ServerPolicy
from guardbot.guard.directory import Directory
from guardbot.guard.evaluator import ConversationDecider, Evaluator
from guardbot.guard.executor import Carrier, Executor
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver

BOT = "@guardbot:example.org"
DOMAIN = "example.org"


@dataclass
class GuardLoop:
    hs: Homeserver
    decisions: db.DecisionStore
    directory: Directory
    rooms: RoomFactSource
    guests: GuestOracle
    evaluator: Evaluator
    executor: Executor
    inbox_wakeup: Wakeup
    queue_wakeup: Wakeup

    @property
    def actions(self) -> db.ActionStore:
        return self.decisions.actions

    @property
    def inbox(self) -> db.InboxStore:
        return self.decisions.inbox

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
    deciders: Iterable[ConversationDecider] = (),
    management_room: str = "",
    named_guests: ConversationDecider | None = None,
    carriers: Mapping[type, Carrier] | None = None,
    remember: Iterable[Callable[[Iterable[Record]], None]] = (),
) -> GuardLoop:
    clock = clock or Clock()
    server = ServerPolicy(
        default=policy, kick_reason="no guests", restore_notice="closed again", auto_join=auto_join
    )
    decisions = db.DecisionStore(database)
    inbox_wakeup, queue_wakeup = Wakeup(), Wakeup()

    # An address: guardbot's own client, told as in app.py when the homeserver answers again.
    hs = (
        Homeserver(homeserver, "as-token", BOT, on_back=inbox_wakeup.homeserver_back)
        if isinstance(homeserver, str)
        else homeserver
    )
    for room_id in listed:
        await decisions.rooms.classify(room_id, True, clock.now_ms())
    directory = Directory(hs, decisions.rooms, clock, inbox_wakeup, poll_interval=60, page_size=100)
    await directory.load()
    rooms = RoomFactSource(server, directory, decisions.settings)
    await rooms.load()
    guests = GuestOracle(hs, DOMAIN, set(), clock)
    guests.set_admin(admin)
    evaluator = Evaluator(
        server=server,
        bot_user_id=BOT,
        management_room=management_room,
        decisions=decisions,
        rooms=rooms,
        guests=guests,
        hs=hs,
        deciders=list(deciders),
        named_guests=named_guests,
        remember=[rooms.remember, *remember],
        clock=clock,
        wakeup=inbox_wakeup,
        queue_wakeup=queue_wakeup,
    )
    executor = Executor(
        hs=hs,
        store=decisions.actions,
        guests=guests,
        rooms=rooms,
        clock=clock,
        wakeup=queue_wakeup,
        inbox_wakeup=inbox_wakeup,
        auto_join=auto_join,
        carriers=carriers,
    )
    return GuardLoop(
        hs, decisions, directory, rooms, guests, evaluator, executor, inbox_wakeup, queue_wakeup
    )
