"""Carries out queued actions against the homeserver, with retry, backoff and a last look.

Each action is re-checked against fresh facts right before it runs (is the user still here,
still a guest, is the room still listed?), by the policy's own `confirm_*` rules, so a retry
after a crash, or a second route to the same decision, does nothing the homeserver has not
already seen done. A sweep decides nothing itself: the members it lists go back to the inbox
as observations, stored in the transaction that finishes the sweep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core import observations, policy
from guardbot.core.actions import (
    AUDITED,
    Action,
    ActionState,
    ForbidGuestAccess,
    JoinRoom,
    Kick,
    Notice,
    Outcome,
    SetRoomPolicy,
    ShieldFormerGuest,
    Sweep,
    WaitingOn,
    lane,
    reason,
    room_of,
)
from guardbot.core.backoff import backoff
from guardbot.core.clock import Clock
from guardbot.core.decision import AuditRecord
from guardbot.core.observations import (
    FormerGuestsFound,
    GuardbotOutside,
    MemberFound,
    Observation,
)
from guardbot.core.policy import RoomFacts, Verdict
from guardbot.db import ActionStore, QueuedAction
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.guard.scheduling import RateLimits, batches, kind, lanes
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 300
DONE, SKIPPED, FAILED, DRY_RUN = (
    ActionState.DONE,
    ActionState.SKIPPED,
    ActionState.FAILED,
    ActionState.DRY_RUN,
)

# Kicks of different users in one room need not wait on each other: a storm in one room is then
# cleared at the homeserver's pace, not at one write latency per guest (on Synapse with
# workers, each kick waits for replication). At most this many at a time per room, and overall.
PER_ROOM = 4
OVERALL = 16


class Carrier(Protocol):
    """Carries out the actions of another part (a named guest's reminder, say): what it does,
    with the executor's queue, retry, rate-limit memory and audit around it. A HomeserverError
    it lets out is retried like any action's; what it finds goes to the inbox."""

    async def carry_out(
        self, action: Action, action_id: int, found: list[Observation]
    ) -> Outcome: ...


class Executor:
    def __init__(
        self,
        *,
        hs: Homeserver,
        store: ActionStore,
        guests: GuestOracle,
        rooms: RoomFactSource,
        clock: Clock,
        wakeup: Wakeup,
        inbox_wakeup: Wakeup,
        auto_join: bool,
        carriers: Mapping[type, Carrier] | None = None,
    ) -> None:
        self.hs = hs
        self.carriers = dict(carriers or {})
        self.store = store
        self.guests = guests
        self.rooms = rooms
        self.clock = clock
        self.wakeup = wakeup
        self.inbox_wakeup = inbox_wakeup  # a sweep's members wait there to be decided on
        self.auto_join = auto_join
        self.bot = hs.bot_user_id
        # A 429 holds back every action of its kind (guard/scheduling.py): each waiting only
        # for itself sent them all again at once, window after window (n²/2 refusals).
        self.limits = RateLimits()
        self._overall = asyncio.Semaphore(OVERALL)

    # -- the loop --------------------------------------------------------------------------
    async def run_once(self) -> int:
        now = self.clock.now_ms()
        runs = self.limits.runs(lanes(await self.store.due(now)), now)
        await asyncio.gather(*(self._run_lane(items) for items in runs))
        return sum(len(items) for items in runs)

    async def _run_lane(self, items: list[QueuedAction]) -> None:
        room = asyncio.Semaphore(PER_ROOM)
        for batch in batches(items):
            await asyncio.gather(*(self._bounded(room, queued) for queued in batch))

    async def _bounded(self, room: asyncio.Semaphore, queued: QueuedAction) -> None:
        async with self._overall, room:
            if self.limits.holds(kind(queued), self.clock.now_ms()):
                return  # a 429 met by another action of this kind, this pass
            await self.execute(queued)

    async def step(self) -> float:
        """One pass: what is due, then how long until the next is. (What waited for the
        homeserver is made due by the decision on its coming back: HomeserverAnswers.)"""
        while await self.run_once():
            pass
        next_at = await self.store.next_due_at()
        now = self.clock.now_ms()
        free_at = self.limits.next_free_at()
        if next_at is not None and next_at <= now and free_at is not None:
            next_at = free_at  # still due yet not run: held back until a wait is over
        metrics.QUEUE_DEPTH.set(await self.store.pending())
        return 5.0 if next_at is None else max(0.05, min(5.0, (next_at - now) / 1000))

    async def execute(self, queued: QueuedAction) -> None:
        action = queued.action
        found: list[Observation] = []
        try:
            outcome = await self._carry_out(queued, found)
        except HomeserverError as e:
            await self._retry(queued, e)
            return
        except Exception as e:
            log.exception("Action %s failed unexpectedly", action)
            outcome = Outcome(FAILED, f"internal error: {type(e).__name__}")
        await self._finish(queued, outcome, found)

    async def _finish(
        self, queued: QueuedAction, outcome: Outcome, found: Sequence[Observation] = ()
    ) -> None:
        action = queued.action
        audit = None
        if isinstance(action, AUDITED):
            audit = AuditRecord(
                self.clock.now_ms(),
                "guardbot",
                type(action).__name__,
                room_of(action),
                getattr(action, "user_id", None),
                reason(action),
                f"{outcome.state}: {outcome.text}",
                dry_run=outcome.state is DRY_RUN,
                state=outcome.state,
            )
        await self.store.finish(queued.id, outcome, self.clock.now_ms(), audit, found)
        if found:
            self.inbox_wakeup.set()
        level = logging.INFO if outcome.state in (DONE, DRY_RUN) else logging.DEBUG
        log.log(level, "%s %s: %s", type(action).__name__, lane(action), outcome.text)
        metrics.ACTIONS_DONE.labels(type(action).__name__, outcome.state.value).inc()
        if isinstance(action, Kick) and outcome.state is DONE:
            metrics.GUESTS_REMOVED.inc()

    # -- what each action does -------------------------------------------------------------
    async def _carry_out(self, queued: QueuedAction, found: list[Observation]) -> Outcome:
        action = queued.action
        carrier = self.carriers.get(type(action))
        if carrier is not None:
            return await carrier.carry_out(action, queued.id, found)
        match action:
            case Kick():
                return await self._kick(queued, action, await self.rooms.facts(action.room_id))
            case ForbidGuestAccess():
                room = await self.rooms.facts(action.room_id)
                return await self._forbid(action, room, queued.id, found)
            case ShieldFormerGuest():
                return await self._shield(action)
            case Sweep():
                return await self._sweep(action, await self.rooms.facts(action.room_id), found)
            case JoinRoom():
                how = await self._join(action.room_id)
                await self.store.wake_room(action.room_id, self.clock.now_ms())
                return Outcome(DONE, how)
            case Notice():
                txn_id = f"guardbot-{queued.id}"
                await self.hs.send_message(action.room_id, action.text, action.html, txn_id)
                return Outcome(DONE, "said")
            case SetRoomPolicy():
                await self.hs.send_state(action.room_id, observations.POLICY_EVENT, action.content)
                return Outcome(DONE, f"policy event sent: {action.content.get('listed_rooms')}")
        return Outcome(FAILED, f"unknown action {type(action).__name__}")

    async def _join(self, room_id: str) -> str:
        """Join as anyone may (an invite, a public room); a room that lets guardbot in by
        neither (an upgrade's replacement nobody invited it to) through the admin API."""
        try:
            await self.hs.join(room_id)
            return "joined"
        except HomeserverError as e:
            if e.status != 403 or not self.guests.admin:
                raise
        await self.hs.admin_join(room_id)
        return "joined through the admin API"

    async def _kick(self, queued: QueuedAction, action: Kick, room: RoomFacts) -> Outcome:
        event = await self.hs.state_event(
            action.room_id, "m.room.member", action.user_id, format_event=True
        )
        member = event.get("content") if isinstance(event, dict) else None
        member = member if isinstance(member, dict) else None
        membership = member.get("membership") if member else None
        if queued.started_at is not None and self._kicked_by_us(event, action, queued.started_at):
            # This very kick reached the homeserver before a crash cut off its answer.
            self.guests.invalidate(action.user_id)
            return Outcome(DONE, f"removed guest {action.user_id} (before a restart)")
        verdict = await self.guests.verdict(
            action.user_id,
            kind_guest=bool(member and member.get("kind") == "guest"),
            new_join=membership == "join",
            fresh=True,
        )
        why_not = policy.why_not_removed(room, membership, verdict)
        if why_not:
            return Outcome(SKIPPED, why_not)
        if room.dry_run:
            return Outcome(DRY_RUN, f"dry-run: would remove guest {action.user_id} ({membership})")
        await self.store.started(queued.id, self.clock.now_ms())
        await self.hs.kick(action.room_id, action.user_id, action.reason)
        # A kicked guest may be upgraded the next moment (no event says so): whatever comes
        # next about them asks the homeserver again, not this "guest" answer.
        self.guests.invalidate(action.user_id)
        how = "" if self.guests.admin else " (on the kind: guest hint; no admin rights)"
        return Outcome(DONE, f"removed guest {action.user_id} ({membership}){how}")

    def _kicked_by_us(self, event: dict | None, action: Kick, started_at: int) -> bool:
        """The member's current event is guardbot's kick with this action's reason, sent no
        earlier than this action's try began (the homeserver's clock: give it a minute)."""
        if not isinstance(event, dict) or event.get("sender") != self.bot:
            return False
        content = event.get("content")
        if not isinstance(content, dict) or content.get("membership") != "leave":
            return False
        sent_at = event.get("origin_server_ts")
        recent = isinstance(sent_at, int) and sent_at >= started_at - 60_000
        return recent and content.get("reason") == action.reason

    async def _forbid(
        self,
        action: ForbidGuestAccess,
        room: RoomFacts,
        action_id: int,
        found: list[Observation],
    ) -> Outcome:
        why_not = policy.confirm_forbid(room)
        if why_not:
            return Outcome(SKIPPED, why_not)
        current = await self.hs.state_event(action.room_id, "m.room.guest_access")
        already = bool(current and current.get("guest_access") == "forbidden")
        outcome = "guest_access was already forbidden"
        if room.dry_run and not already:
            return Outcome(DRY_RUN, "dry-run: would set guest_access to forbidden")
        if already:
            if not action.notice:
                return Outcome(SKIPPED, outcome)
        else:
            if not action.cause.startswith(policy.AFTER_SHIELDING):
                former = await self._former_guests(action.room_id)
                if former:
                    # Decided like any action: shield each, then close (policy.decide_shields).
                    now = self.clock.now_ms()
                    obs = FormerGuestsFound(
                        action.room_id, former, action.cause, action.notice, now
                    )
                    found.append(obs)
                    return Outcome(DONE, f"closing once {len(former)} former guests are shielded")
            await self.hs.send_state(
                action.room_id, "m.room.guest_access", {"guest_access": "forbidden"}
            )
            outcome = "set guest_access to forbidden"
        if action.notice:
            txn_id = f"guardbot-notice-{action_id}"
            await self.hs.send_message(action.room_id, action.notice, action.notice, txn_id)
        return Outcome(DONE, outcome)

    async def _former_guests(self, room_id: str) -> list[str]:
        """Synapse answers guest_access=forbidden by removing every member whose *current*
        member event says `kind: guest`, and an upgraded guest keeps that stale event: the
        members who would be removed though they are no guests."""
        former = []
        for event in await self.hs.members(room_id):
            user_id, content = event.get("state_key"), event.get("content")
            if not isinstance(user_id, str) or not isinstance(content, dict):
                continue
            if content.get("kind") != "guest" or content.get("membership") != "join":
                continue
            if not observations.is_guest_candidate(user_id, self.guests.domain, kind_guest=True):
                continue  # another server's user: Synapse's sweep only touches local ones
            verdict = await self.guests.verdict(
                user_id, kind_guest=True, new_join=False, fresh=True
            )
            if verdict is Verdict.NOT_GUEST:
                former.append(user_id)
        return former

    async def _shield(self, action: ShieldFormerGuest) -> Outcome:
        """Re-send the member's event without `kind` (as them: their numeric ID is in
        guardbot's namespace), if it still says guest and they are still no guest."""
        room_id, user_id = action.room_id, action.user_id
        member = await self.hs.state_event(room_id, "m.room.member", user_id)
        if not member or member.get("kind") != "guest" or member.get("membership") != "join":
            return Outcome(SKIPPED, f"{user_id}'s member event no longer says guest")
        verdict = await self.guests.verdict(user_id, kind_guest=True, new_join=False, fresh=True)
        if verdict is not Verdict.NOT_GUEST:
            return Outcome(SKIPPED, f"{user_id} is not shown to be a former guest")
        fresh = {k: v for k, v in member.items() if k != "kind"}
        await self.hs.send_state(room_id, "m.room.member", fresh, user_id, as_user=user_id)
        return Outcome(DONE, f"re-sent {user_id}'s member event without kind: guest")

    async def _sweep(self, action: Sweep, room: RoomFacts, found: list[Observation]) -> Outcome:
        why_not = policy.confirm_sweep(room)
        if why_not:
            return Outcome(SKIPPED, why_not)
        members = await self.hs.members(action.room_id)
        for event in members:
            user_id, content = event.get("state_key"), event.get("content")
            if not isinstance(user_id, str) or not isinstance(content, dict):
                continue
            kind_guest = content.get("kind") == "guest"
            membership = content.get("membership")
            if not isinstance(membership, str) or not policy.removable(membership):
                continue
            if not observations.is_guest_candidate(user_id, self.guests.domain, kind_guest):
                continue
            event_id = event.get("event_id")
            event_id = event_id if isinstance(event_id, str) else f"{action.key}|{user_id}"
            found.append(MemberFound(action.room_id, user_id, event_id, membership, kind_guest))
        return Outcome(DONE, f"{len(members)} members, {len(found)} guest candidates to check")

    # -- when the homeserver says no -------------------------------------------------------
    async def _retry(self, queued: QueuedAction, e: HomeserverError) -> None:
        action = queued.action
        now = self.clock.now_ms()
        found: list[Observation] = []
        backoff_ms = int(backoff(queued.attempts, 2_000, MAX_BACKOFF_S * 1000))
        if e.status == 429:
            delay = e.retry_after_ms if e.retry_after_ms is not None else backoff_ms
            waiting_on, why = WaitingOn.RATE_LIMIT, "rate-limited by the homeserver"
            self.limits.limited(kind(queued), now + delay)
        elif e.transient:
            delay, waiting_on, why = backoff_ms, WaitingOn.HOMESERVER, f"homeserver trouble ({e})"
        elif (room_id := room_of(action)) is None:
            # A personal action's carrier handles the refusals it expects; any other is final.
            log.error("%s for %s failed for good: %s", type(action).__name__, lane(action), e)
            await self._finish(queued, Outcome(FAILED, str(e)))
            return
        elif e.not_in_room:
            delay, waiting_on = backoff_ms, WaitingOn.ROOM
            why = f"guardbot is not in {room_id}"
            if self.auto_join and self.guests.admin:
                # Decided like any join (queued, audited); its success wakes this room.
                why += "; joining it (bot.auto_join_listed_rooms)"
                found.append(GuardbotOutside(room_id, now))
            else:
                why += (
                    f": invite {self.bot} and give it power to kick and to change guest access"
                    " (or set bot.auto_join_listed_rooms with admin rights)"
                )
        elif e.status == 403:
            delay, waiting_on = backoff_ms, WaitingOn.ROOM
            why = (
                f"guardbot lacks power in {room_id} ({e.error}): give {self.bot} a power"
                " level that may kick and send m.room.guest_access, e.g. moderator (50)"
            )
        else:
            log.error("%s in %s failed for good: %s", type(action).__name__, room_id, e)
            await self._finish(queued, Outcome(FAILED, str(e)))
            return
        await self.store.retry_at(queued.id, now + delay, waiting_on, why, found, now)
        if found:
            self.inbox_wakeup.set()
        metrics.ACTIONS_RETRIED.labels(type(action).__name__, waiting_on.value).inc()
        log.warning(
            "%s in %s not done: %s; retrying in %.1fs",
            type(action).__name__,
            lane(action),
            why,
            delay / 1000,
        )
