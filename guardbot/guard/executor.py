"""Runs queued actions: which are due and may go now (guard/scheduling.py), each through the
carrier of its kind (guard/room_carrier.py for rooms, named_guests/carrier.py for people),
then the outcome stored with its audit record, or, when the homeserver says no, when to try
again and why. What a carrier finds goes back to the inbox as observations, stored in the
same transaction as the outcome.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Protocol

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core.actions import (
    AUDITED,
    ActionState,
    Kick,
    Outcome,
    WaitingOn,
    lane,
    reason,
    room_of,
)
from guardbot.core.backoff import backoff
from guardbot.core.clock import Clock
from guardbot.core.decision import AuditRecord
from guardbot.core.observations import (
    GuardbotOutside,
    Observation,
)
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
    """Carries out the actions of one part (rooms, named guests): gathers the facts, confirms
    with the core's rule, acts. The executor keeps the queue, retry, rate-limit memory and
    audit around it. A HomeserverError it lets out is retried like any action's; what it
    finds goes to the inbox."""

    async def carry_out(self, queued: QueuedAction, found: list[Observation]) -> Outcome: ...


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
        carriers: Mapping[type, Carrier],
    ) -> None:
        self.hs = hs
        self.carriers = dict(carriers)
        self.store = store
        self.guests = guests  # whether guardbot may join through the admin API
        self.rooms = rooms  # a removal is counted by its room's policy
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
        for waiting_on, count in (await self.store.waiting()).items():
            metrics.ACTIONS_WAITING.labels(waiting_on).set(count)
        oldest = await self.store.oldest_pending("Kick")
        metrics.REMOVAL_PENDING_OLDEST.set(0 if oldest is None else max(0, now - oldest) / 1000)
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
            try:
                policy_of = (await self.rooms.facts(action.room_id)).policy.value
            except HomeserverError:  # a room always known by now; a metric never fails a kick
                policy_of = "unknown"
            metrics.GUESTS_REMOVED.labels(policy_of, action.room_id).inc()
            if action.joined_at is not None:
                seconds = max(0, self.clock.now_ms() - action.joined_at) / 1000
                metrics.REMOVAL_SECONDS.observe(seconds)

    async def _carry_out(self, queued: QueuedAction, found: list[Observation]) -> Outcome:
        carrier = self.carriers.get(type(queued.action))
        if carrier is None:
            return Outcome(FAILED, f"no carrier for {type(queued.action).__name__}")
        return await carrier.carry_out(queued, found)

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
