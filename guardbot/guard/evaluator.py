"""Turns inbox observations into queued actions: gathers facts, asks the policy core, records.

Every input (homeserver events, directory changes, commands) arrives through the inbox, so the
one loop here sees them in order. An observation leaves the inbox only in the same database
transaction that queues its actions and audits the decision, so a crash at any point
re-evaluates it rather than losing it; the actions' dedup keys keep a re-evaluation from
queueing anything twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from guardbot import metrics
from guardbot.config import Config
from guardbot.core import observations as triage
from guardbot.core import policy
from guardbot.core.clock import now_ms
from guardbot.core.observations import POLICY_EVENT
from guardbot.core.policy import Action, Notice, RoomFacts, Verdict
from guardbot.db import ActionStore, InboxRow, InboxStore
from guardbot.db.auditlog import AuditEntry
from guardbot.guard.facts import Rooms
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger("guardbot.guard.evaluator")

ConversationHandler = Callable[[triage.Message], Awaitable[list[Action]]]
MemberHandler = Callable[[triage.ConversationMember], Awaitable[list[Action]]]


def describe(obs: triage.Observation) -> str:
    """One line for the audit log: what happened."""
    match obs:
        case triage.MemberChange():
            hint = ", kind: guest" if obs.kind_guest else ""
            return f"{obs.user_id} {obs.membership} ({obs.event_id}{hint})"
        case triage.RoomListed():
            return "room appeared in the public directory"
        case triage.GuestAccessChange():
            return f"{obs.sender} set guest_access to {obs.guest_access} ({obs.event_id})"
        case triage.BotMembership():
            return f"guardbot {obs.membership} ({obs.event_id})"
        case triage.Message():
            # Never the text: in a named guest's DM it could be the password they meant to set.
            return f"a message from {obs.sender} ({obs.event_id})"
    return type(obs).__name__


class Evaluator:
    def __init__(
        self,
        config: Config,
        hs: Homeserver,
        inbox: InboxStore,
        actions: ActionStore,
        rooms: Rooms,
        guests: GuestOracle,
        on_queued: asyncio.Event,
    ) -> None:
        self.config = config
        self.hs = hs
        self.inbox = inbox
        self.actions = actions
        self.rooms = rooms
        self.guests = guests
        self.bot_user_id = config.bot_user_id
        self.wakeup = asyncio.Event()
        self.on_queued = on_queued
        # Conversation handlers (commands, PWLU DMs) plug in here; each may return actions.
        self.message_handlers: list[ConversationHandler] = []
        self.member_handlers: list[MemberHandler] = []
        self._audit: list[AuditEntry] = []  # decisions made while evaluating the current row

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
            case triage.BotMembership() if obs.membership == "invite":
                return await self._decide_invite(obs)
        room = await self.rooms.facts(obs.room_id)
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
            case triage.RoomPolicyChange():
                return await self._decide_room_policy(obs)
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

    async def _decide_invite(self, obs: triage.BotMembership) -> list[Action]:
        """Any room may invite guardbot; the management room only by a server admin."""
        if obs.room_id == self.config["management_room"]:
            inviter = await self.hs.admin_user(obs.sender) if self.guests.admin else None
            if not inviter or not inviter.get("admin"):
                log.warning(
                    "Ignoring an invite to the management room from %s, not a server admin",
                    obs.sender,
                )
                return []
        return [policy.JoinRoom(obs.room_id, cause=obs.event_id)]

    async def _decide_room_policy(self, obs: triage.RoomPolicyChange) -> list[Action]:
        power = await self.hs.room_power(obs.room_id)
        ruling = policy.judge_room_policy(
            obs,
            sender_may=power.may_send_state(obs.sender, POLICY_EVENT),
            allowed=list(self.config["policy.room_admins_may"]),
            bot_user_id=self.bot_user_id,
        )
        text = f"guardbot: {ruling.explanation}."
        self._audit.append(
            AuditEntry(
                now_ms(),
                ruling.set_by,
                "policy",
                obs.room_id,
                ruling.set_by,
                f"{POLICY_EVENT} {obs.content.get('listed_rooms')!r} ({obs.event_id})",
                "refused" if ruling.policy is None else "accepted",
            )  # fmt: skip
        )
        if ruling.policy is None:
            text = f"guardbot ignores this policy change: {ruling.explanation}."
            log.warning("Room %s: %s", obs.room_id, text)
            return [Notice(obs.room_id, text, text, cause=obs.event_id)]
        await self.rooms.record_policy(obs, ruling)
        room = await self.rooms.facts(obs.room_id)
        if room.policy_source.startswith("the server admin"):
            text += f" The server admin's setting for this room ({room.policy}) still applies."
        # Switching a listed room to an enforcing policy applies it to who is already there.
        sweep = policy.close_and_sweep(room, cause=obs.event_id)
        return [Notice(obs.room_id, text, text, cause=obs.event_id), *sweep]

    # -- the loop --------------------------------------------------------------------------
    async def run_once(self) -> int:
        """Evaluate what is in the inbox; returns how many observations were settled."""
        settled = 0
        for row in await self.inbox.take():
            self._audit = []
            actions = await self._decide_row(row)
            now = now_ms()
            audit = self._audit + [
                AuditEntry(
                    now,
                    "guardbot",
                    f"decide {type(a).__name__}",
                    a.room_id,
                    getattr(a, "user_id", None),
                    describe(row.observation),
                    "queued",
                )  # fmt: skip
                for a in actions
                if isinstance(a, policy.ENFORCING + (policy.Sweep,))
            ]
            await self.inbox.settle(row.id, actions, now, audit)
            settled += 1
            if actions:
                metrics.EVENTS_ACTED_ON.inc()
                log.info(
                    "Queued %s for %s",
                    ", ".join(type(a).__name__ for a in actions),
                    describe(row.observation),
                )
                self.on_queued.set()
        return settled

    async def _decide_row(self, row: InboxRow) -> list[Action]:
        try:
            return await self.decide(row.observation)
        except HomeserverError as e:
            if e.transient or e.status == 401:
                raise  # facts unavailable for now (or the token, till fixed): try again later
            # Refused for good (not in that room, no such room...): kept, it would stay at the
            # head of the inbox for ever and nothing after it would ever be decided.
            log.warning("Cannot evaluate %s (%s); dropping it", row.observation, e)
            return []
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
            except Exception as e:
                if isinstance(e, HomeserverError):
                    log.warning("Cannot gather facts (%s); retrying in %.0fs", e, backoff)
                else:
                    log.exception("Evaluator failed; retrying in %.0fs", backoff)
                # A wake-up (new events, the homeserver answering again) ends the wait early.
                try:
                    await asyncio.wait_for(self.wakeup.wait(), timeout=backoff)
                except TimeoutError:
                    pass
                backoff = min(backoff * 2, 60)
                continue
            metrics.INBOX_DEPTH.set(await self.inbox.size())
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=5)
            except TimeoutError:
                pass
