"""Turns inbox observations into queued actions: gathers facts, asks the policy core, records.

Every input (homeserver events, directory changes) arrives through the inbox, so the one loop
here sees them in order. An observation leaves the inbox only in the same database transaction
that queues its actions, so a crash at any point re-evaluates it rather than losing it; the
actions' dedup keys keep a re-evaluation from queueing anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from . import policy, triage
from .clock import now_ms
from .config import Config
from .db import ActionStore, InboxRow, InboxStore
from .directory import Directory
from .guests import GuestOracle
from .homeserver import HomeserverError
from .policy import Action, RoomFacts, Verdict

log = logging.getLogger("guardbot.evaluator")


class Evaluator:
    def __init__(
        self,
        config: Config,
        inbox: InboxStore,
        actions: ActionStore,
        directory: Directory,
        guests: GuestOracle,
        on_queued: asyncio.Event,
    ) -> None:
        self.config = config
        self.inbox = inbox
        self.actions = actions
        self.directory = directory
        self.guests = guests
        self.bot_user_id = config.bot_user_id
        self.wakeup = asyncio.Event()
        self.on_queued = on_queued
        # Conversation handlers (commands, PWLU DMs) plug in here; each may return actions.
        self.message_handlers: list[Callable[[triage.Message], Awaitable[list[Action]]]] = []
        self.member_handlers: list[
            Callable[[triage.ConversationMember], Awaitable[list[Action]]]
        ] = []

    async def room_facts(self, room_id: str) -> RoomFacts:
        return RoomFacts(
            room_id=room_id,
            listed=await self.directory.is_listed(room_id),
            policy=self.config.room_policy(room_id),
            kick_reason=self.config["policy.kick_reason"],
            restore_notice=self.config["policy.restore_notice"],
        )

    async def decide(self, obs: triage.Observation) -> list[Action]:
        match obs:
            case triage.Message():
                return [a for h in self.message_handlers for a in await h(obs)]
            case triage.ConversationMember():
                return [a for h in self.member_handlers for a in await h(obs)]
            case triage.PowerChange():
                await self.actions.wake_room(obs.room_id, now_ms())
                self.on_queued.set()
                return []
        room = await self.room_facts(obs.room_id)
        match obs:
            case triage.MemberChange():
                return await self._decide_member(obs, room)
            case triage.GuestAccessChange():
                return policy.decide_guest_access(obs, room, self.bot_user_id)
            case triage.RoomListed():
                return policy.decide_listed(obs, room)
            case triage.BotMembership():
                if obs.membership == "join":
                    await self.actions.wake_room(obs.room_id, now_ms())
                return policy.decide_bot_membership(obs, room)
        return []

    async def _decide_member(self, obs: triage.MemberChange, room: RoomFacts) -> list[Action]:
        if not policy.enforces(room):
            return []
        if obs.new_join and not obs.kind_guest:
            # A join without the hint: an upgraded guest, or a guest's rename is later.
            self.guests.invalidate(obs.user_id)
        verdict = await self.guests.verdict(
            obs.user_id, kind_guest=obs.kind_guest, new_join=obs.new_join
        )
        if verdict is Verdict.UNKNOWN:
            log.info(
                "Not acting on %s in %s: cannot tell whether they are a guest",
                obs.user_id,
                obs.room_id,
            )
        return policy.decide_member(obs, room, verdict)

    async def run_once(self) -> int:
        """Evaluate what is in the inbox; returns how many observations were settled."""
        settled = 0
        for row in await self.inbox.take():
            actions = await self._decide_row(row)
            await self.inbox.settle(row.id, actions, now_ms())
            settled += 1
            if actions:
                log.info(
                    "Queued %s for %s",
                    ", ".join(type(a).__name__ for a in actions),
                    row.observation,
                )
                self.on_queued.set()
        return settled

    async def _decide_row(self, row: InboxRow) -> list[Action]:
        try:
            return await self.decide(row.observation)
        except HomeserverError:
            raise  # facts unavailable: keep the row, try again later
        except Exception:
            # A bug must not wedge the inbox behind one observation; drop it loudly.
            log.exception("Could not evaluate %s; dropping it", row.observation)
            return []

    async def run(self) -> None:
        backoff = 1.0
        while True:
            self.wakeup.clear()
            try:
                while await self.run_once():
                    pass
                backoff = 1.0
            except HomeserverError as e:
                log.warning("Cannot gather facts (%s); retrying in %.0fs", e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            except Exception:
                log.exception("Evaluator failed; retrying")
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60)
                continue
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=5)
            except TimeoutError:
                pass
