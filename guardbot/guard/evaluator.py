"""Turns inbox observations into stored decisions: gather facts (reads), decide (pure), store.

Every input (homeserver events, directory changes, members found by sweeps, the homeserver
coming back, commands, named guests' replies) arrives through the inbox, so the one loop here
sees them in order. An observation leaves the inbox only in the same database transaction that
stores its decision, so a crash at any point re-evaluates it rather than losing it; the
actions' dedup keys keep a re-evaluation from queueing anything twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core import policy
from guardbot.core.clock import Clock
from guardbot.core.decision import NOTHING, Decision, HomeserverAnswers, Record, RoomWoken
from guardbot.core.observations import (
    POLICY_EVENT,
    BotMembership,
    ConversationMember,
    ExpiryObservation,
    GuardbotOutside,
    HomeserverBack,
    MemberChange,
    MemberFound,
    Message,
    NamedGuestObservation,
    Observation,
    RecheckDue,
    ReportDue,
    RoomPolicyChange,
    RoomPublished,
    RoomUpgraded,
    describe,
)
from guardbot.core.policy import Facts, ServerPolicy, Verdict
from guardbot.db import DecisionStore, InboxRow
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger(__name__)

INBOX_LOOK_S = 1.0

Conversational = Message | ConversationMember


class ConversationDecider(Protocol):
    """Decides on what people say or do where guardbot talks with them (commands, a named
    guest's DM), or, for the named guests' decider, on the events of a named guest's life.
    `gather` reads what the decision needs, None if the observation is not for this decider;
    `decide` is pure."""

    async def gather(self, obs: Any) -> Any: ...

    def decide(self, obs: Any, facts: Any, now: int) -> Decision: ...


class Evaluator:
    def __init__(
        self,
        *,
        server: ServerPolicy,
        bot_user_id: str,
        management_room: str,
        decisions: DecisionStore,
        rooms: RoomFactSource,
        guests: GuestOracle,
        hs: Homeserver,
        deciders: Sequence[ConversationDecider],
        named_guests: ConversationDecider | None,
        expiry: ConversationDecider | None = None,
        remember: Sequence[Callable[[Iterable[Record]], None]],
        clock: Clock,
        wakeup: Wakeup,
        queue_wakeup: Wakeup,
    ) -> None:
        self.server = server
        self.bot_user_id = bot_user_id
        self.management_room = management_room
        self.decisions = decisions
        self.inbox = decisions.inbox
        self.rooms = rooms
        self.guests = guests
        self.hs = hs
        self.deciders = deciders  # for what people say or do in conversations
        self.named_guests = named_guests  # for a named guest's reminders, password, rooms
        self.expiry = expiry  # for an account's end (and a suspended named guest's password)
        self.remember = remember  # told what each stored decision recorded (in-memory views)
        self.clock = clock
        self.wakeup = wakeup
        self.queue_wakeup = queue_wakeup

    # -- gather (reads only) ---------------------------------------------------------------
    async def gather(self, obs: Observation) -> Facts:
        now = self.clock.now_ms()
        base = Facts(
            now=now,
            bot_user_id=self.bot_user_id,
            management_room=self.management_room,
            # Not copied: it changes only when a stored decision is remembered, after this one.
            dry_runs=self.rooms.dry_runs,
        )
        match obs:
            case RoomPublished():
                return base
            case HomeserverBack() | RecheckDue():
                return replace(base, listed_rooms=self.rooms.listed_rooms())
            case ReportDue():
                return replace(base, finished=tuple(await self.decisions.actions.unreported()))
            case BotMembership() if obs.membership == "invite":
                return replace(base, inviter_is_admin=await self._admin(obs))
        room_id = getattr(obs, "room_id", None)
        if room_id is None or isinstance(obs, Conversational):
            return base
        room, classified = await self.rooms.room(room_id)
        facts = replace(base, room=room, classified=classified)
        match obs:
            case MemberChange() if policy.removes_guests(room):
                if not obs.kind_guest and not self.guests.is_local(obs.user_id):
                    # Another server's member without the mark: what their membership's join
                    # said, looking back through their renames.
                    event = await self.hs.state_event(
                        room_id, "m.room.member", obs.user_id, format_event=True
                    )
                    verdict = await self.guests.member_verdict(
                        room_id, obs.user_id, event, fresh=False
                    )
                    return replace(facts, verdict=verdict)
                if obs.new_join and not obs.kind_guest:
                    # A join without the hint: an upgraded guest, or a guest's rename is later.
                    self.guests.invalidate(obs.user_id)
                verdict = await self._verdict(obs, obs.kind_guest, obs.new_join)
                return replace(facts, verdict=verdict)
            case MemberFound() if policy.removes_guests(room):
                # Not a new join: a stale `kind` alone never condemns anyone found by a sweep.
                verdict = await self.guests.verdict(
                    obs.user_id,
                    kind_guest=obs.kind_guest,
                    new_join=False,
                    joined_as_guest=obs.joined_as_guest,
                )
                return replace(facts, verdict=verdict)
            case RoomPolicyChange():
                power = await self.hs.room_power(room_id)
                may = power.may_send_state(obs.sender, POLICY_EVENT)
                return replace(facts, sender_may_set_policy=may)
            case BotMembership() if obs.membership == "join":
                return await self._joined(obs, facts)
            case RoomUpgraded():
                return replace(facts, predecessor_policy=self.rooms.policies.get(room_id))
            case GuardbotOutside():
                return replace(facts, admin=self.guests.admin)
        return facts

    async def _joined(self, join: BotMembership, facts: Facts) -> Facts:
        """guardbot is in: the room's own policy event (its initial state, or one sent while
        guardbot was not there), or, for an upgraded room without one, its predecessor's."""
        room_id = join.room_id
        event = await self.hs.state_event(room_id, POLICY_EVENT, format_event=True)
        known = self.rooms.policies.get(room_id)
        if event is not None and isinstance(event.get("content"), dict):
            if known is not None and known.event_id == event.get("event_id"):
                return facts  # judged before
            event_id, sender = event.get("event_id"), event.get("sender")
            if not isinstance(event_id, str) or not isinstance(sender, str):
                return facts
            change = RoomPolicyChange(room_id, event_id, sender, event["content"])
            power = await self.hs.room_power(room_id)
            may = power.may_send_state(change.sender, POLICY_EVENT)
            return replace(facts, policy_event=change, sender_may_set_policy=may)
        if known is not None:
            return facts
        create = await self.hs.state_event(room_id, "m.room.create")
        predecessor = create.get("predecessor") if isinstance(create, dict) else None
        old = predecessor.get("room_id") if isinstance(predecessor, dict) else None
        if isinstance(old, str) and old in self.rooms.policies:
            return replace(facts, predecessor_policy=self.rooms.policies[old])
        return facts

    async def _verdict(
        self, obs: MemberChange | MemberFound, kind_guest: bool, new_join: bool
    ) -> Verdict:
        verdict = await self.guests.verdict(obs.user_id, kind_guest=kind_guest, new_join=new_join)
        if verdict is Verdict.UNKNOWN and obs.membership in ("join", "invite"):
            log.info(
                "Not acting on %s in %s: cannot tell whether they are a guest",
                obs.user_id,
                obs.room_id,
            )
        return verdict

    async def _admin(self, invite: BotMembership) -> bool:
        """Is whoever invited guardbot into the management room a server admin?"""
        if invite.room_id != self.management_room:
            return False
        inviter = await self.hs.admin_user(invite.sender) if self.guests.admin else None
        if inviter and inviter.get("admin"):
            return True
        log.warning(
            "Ignoring an invite to the management room from %s, not a server admin",
            invite.sender,
        )
        return False

    # -- decide and store ------------------------------------------------------------------
    async def decide(self, obs: Observation) -> Decision:
        """Gather, then the pure decision for this observation."""
        if isinstance(obs, ExpiryObservation):
            if self.expiry is None:
                return NOTHING  # expiry was turned off since
            return self.expiry.decide(obs, await self.expiry.gather(obs), self.clock.now_ms())
        if isinstance(obs, NamedGuestObservation):
            if self.named_guests is None:
                return NOTHING  # named guests were turned off since
            facts = await self.named_guests.gather(obs)
            decision = self.named_guests.decide(obs, facts, self.clock.now_ms())
            if self.expiry is not None:
                # A password set lifts a suspension: the expiry's part of the same decision.
                lifted = await self.expiry.gather(obs)
                decision += self.expiry.decide(obs, lifted, self.clock.now_ms())
            return decision
        if isinstance(obs, Conversational):
            now = self.clock.now_ms()
            decision = NOTHING
            named = [self.named_guests] if self.named_guests is not None else []
            for decider in [*self.deciders, *named]:
                facts = await decider.gather(obs)
                if facts is not None:
                    decision += decider.decide(obs, facts, now)
            return decision
        return policy.decide(obs, await self.gather(obs), self.server)

    async def run_once(self) -> int:
        """Evaluate what is in the inbox; returns how many observations were settled."""
        settled = 0
        for row in await self.inbox.take():
            decision = await self._decide_row(row)
            queued = await self.decisions.settle(row.id, decision, self.clock.now_ms())
            if queued is None:
                log.warning("%s was decided elsewhere meanwhile; not again", row.observation)
                continue
            for remember in self.remember:
                remember(decision.records)
            settled += 1
            woken = (RoomWoken, HomeserverAnswers)
            if decision.actions or any(isinstance(r, woken) for r in decision.records):
                self.queue_wakeup.set()
            if queued:
                metrics.EVENTS_ACTED_ON.inc()
                log.info(
                    "Queued %s for %s",
                    ", ".join(type(a).__name__ for a in decision.actions),
                    describe(row.observation),
                )
            elif decision.actions:
                log.debug("Already queued for %s: nothing new", describe(row.observation))
        return settled

    async def _decide_row(self, row: InboxRow) -> Decision:
        try:
            return await self.decide(row.observation)
        except HomeserverError as e:
            if e.transient or e.status == 401:
                raise  # facts unavailable for now (or the token, till fixed): try again later
            # Refused for good (not in that room, no such room...): kept, it would stay at the
            # head of the inbox for ever and nothing after it would ever be decided.
            log.warning("Cannot evaluate %s (%s); dropping it", row.observation, e)
            return NOTHING
        except Exception:
            # A bug must not wedge the inbox behind one observation; drop it loudly.
            log.exception("Could not evaluate %s; dropping it", row.observation)
            return NOTHING

    async def step(self) -> float:
        """One pass of the loop: everything in the inbox, then wait for more."""
        if self.wakeup.take_homeserver_back():
            now = self.clock.now_ms()
            try:
                await self.inbox.add([HomeserverBack(now)], now)
            except Exception:
                self.wakeup.homeserver_back()  # not lost: the next pass tries again
                raise
        while await self.run_once():
            pass
        metrics.INBOX_DEPTH.set(await self.inbox.size())
        oldest = await self.inbox.oldest_received_at()
        age = 0.0 if oldest is None else max(0, self.clock.now_ms() - oldest) / 1000
        metrics.INBOX_OLDEST.set(age)
        # Another process may store observations too (a standby's door hearing a publication):
        # looked for every second, an indexed read of an empty inbox.
        return INBOX_LOOK_S
