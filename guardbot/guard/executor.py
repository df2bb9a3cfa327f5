"""Carries out queued actions against the homeserver, with retry, backoff and a last look.

Each action is re-checked against fresh facts right before it runs (is the user still here,
still a guest, is the room still listed?), so a retry after a crash, or a second route to the
same decision, does nothing the homeserver has not already seen done.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable

from guardbot import metrics
from guardbot.config import Config
from guardbot.core import observations as triage
from guardbot.core import policy
from guardbot.core.clock import now_ms
from guardbot.core.policy import Action, RoomFacts, Verdict
from guardbot.db import ActionStore, QueuedAction
from guardbot.db.auditlog import AuditEntry
from guardbot.db.queue import DONE, DRY_RUN, FAILED, SKIPPED, UNREACHABLE
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger("guardbot.guard.executor")

MAX_BACKOFF_S = 300
# After M_LIMIT_EXCEEDED, actions of that kind go out one at a time for this long after the
# wait the homeserver named, so its limit can refill instead of meeting a burst again.
RATE_LIMIT_CAUTION_MS = 30_000


class Executor:
    def __init__(
        self,
        config: Config,
        hs: Homeserver,
        store: ActionStore,
        guests: GuestOracle,
        room_facts: Callable[[str], Awaitable[RoomFacts]],
        wakeup: asyncio.Event,
    ) -> None:
        self.config = config
        self.hs = hs
        self.store = store
        self.guests = guests
        self.room_facts = room_facts
        self.wakeup = wakeup
        self.bot = config.bot_user_id
        # Told of every finished action (management-room notices, metrics).
        self.listeners: list[Callable[[Action, str, str], None]] = []
        # Action kind -> until when (ms) the homeserver asked to be left alone. Its limits are
        # on guardbot as a user, so a 429 holds back every action of that kind, not just the
        # one refused: each waiting only for itself sent them all again at once, window after
        # window (n²/2 refusals for n actions).
        self.limited_until: dict[str, int] = {}
        self._homeserver_back = False
        # Set by the app: what to queue when the homeserver is back from an outage (given the
        # time), e.g. a sweep of every listed room for the events it lost meanwhile.
        self.after_outage: Callable[[int], list[Action]] | None = None

    def homeserver_back(self) -> None:
        """The homeserver answers again (Homeserver.on_back): retry what waited for it."""
        self._homeserver_back = True
        self.wakeup.set()

    # -- the loop --------------------------------------------------------------------------
    async def run_once(self) -> int:
        now = now_ms()
        by_room: dict[str, list[QueuedAction]] = defaultdict(list)
        for queued in await self.store.due(now):
            by_room[queued.action.room_id].append(queued)
        runs = self._not_held_back(by_room.values(), now)
        # Rooms run side by side; within a room, in the order decided (forbid before kick).
        await asyncio.gather(*(self._run_room(items) for items in runs))
        return sum(len(items) for items in runs)

    def _not_held_back(
        self, rooms: Iterable[list[QueuedAction]], now: int
    ) -> list[list[QueuedAction]]:
        """What may go out now: nothing of a kind the homeserver is limiting, and while it may
        still be, one action of that kind per pass (the loop comes straight back for the
        next). A room stops at its first held-back action, keeping its order."""
        probing: set[str] = set()
        runs = []
        for items in rooms:
            run: list[QueuedAction] = []
            for queued in items:
                kind = type(queued.action).__name__
                until = self.limited_until.get(kind)
                if until is not None and now >= until + RATE_LIMIT_CAUTION_MS:
                    del self.limited_until[kind]
                elif until is not None and (now < until or kind in probing):
                    break
                elif until is not None:
                    probing.add(kind)
                run.append(queued)
            if run:
                runs.append(run)
        return runs

    async def _run_room(self, items: list[QueuedAction]) -> None:
        for queued in items:
            await self.execute(queued)

    async def run(self) -> None:
        while True:
            self.wakeup.clear()
            try:
                if self._homeserver_back:
                    self._homeserver_back = False
                    now = now_ms()
                    await self.store.wake_unreachable(now)
                    if self.after_outage is not None:
                        await self.store.add(self.after_outage(now), now)
                while await self.run_once():
                    pass
                next_at = await self.store.next_due_at()
                if next_at is not None and next_at <= now_ms() and self.limited_until:
                    # Still due yet not run: held back until a rate limit's wait is over.
                    next_at = min(self.limited_until.values())
                metrics.QUEUE_DEPTH.set(await self.store.pending())
            except Exception:
                log.exception("Action queue failed; retrying")
                next_at = None
            delay = 5.0 if next_at is None else max(0.05, min(5.0, (next_at - now_ms()) / 1000))
            try:
                await asyncio.wait_for(self.wakeup.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def execute(self, queued: QueuedAction) -> None:
        action = queued.action
        try:
            state, outcome = await self._carry_out(queued)
        except HomeserverError as e:
            await self._retry(queued, e)
            return
        except Exception as e:
            log.exception("Action %s failed unexpectedly", action)
            state, outcome = FAILED, f"internal error: {type(e).__name__}"
        await self._finish(queued, state, outcome)

    async def _finish(self, queued: QueuedAction, state: str, outcome: str) -> None:
        action = queued.action
        audit = None
        if isinstance(action, policy.ENFORCING + (policy.Sweep, policy.SetRoomPolicy)):
            audit = AuditEntry(
                now_ms(), "guardbot", type(action).__name__, action.room_id,
                getattr(action, "user_id", None), f"caused by {action.cause}",
                f"{state}: {outcome}", dry_run=state == DRY_RUN,
            )  # fmt: skip
        await self.store.finish(queued.id, state, outcome, now_ms(), audit)
        level = logging.INFO if state in (DONE, DRY_RUN) else logging.DEBUG
        log.log(level, "%s %s: %s", type(action).__name__, action.room_id, outcome)
        metrics.ACTIONS_DONE.labels(type(action).__name__, state).inc()
        if isinstance(action, policy.Kick) and state == DONE:
            metrics.GUESTS_REMOVED.inc()
        for listener in self.listeners:
            listener(action, state, outcome)

    # -- what each action does -------------------------------------------------------------
    async def _carry_out(self, queued: QueuedAction) -> tuple[str, str]:
        action = queued.action
        room = await self.room_facts(action.room_id)
        match action:
            case policy.Kick():
                return await self._kick(action, room)
            case policy.ForbidGuestAccess():
                return await self._forbid(action, room, queued.id)
            case policy.Sweep():
                return await self._sweep(action, room)
            case policy.JoinRoom():
                await self.hs.join(action.room_id)
                await self.store.wake_room(action.room_id, now_ms())
                return DONE, "joined"
            case policy.Notice():
                txn_id = f"guardbot-{queued.id}"
                await self.hs.send_message(action.room_id, action.text, action.html, txn_id)
                return DONE, "said"
            case policy.SetRoomPolicy():
                await self.hs.send_state(action.room_id, triage.POLICY_EVENT, action.content)
                return DONE, f"policy event sent: {action.content.get('listed_rooms')}"
        return FAILED, f"unknown action {type(action).__name__}"

    async def _kick(self, action: policy.Kick, room: RoomFacts) -> tuple[str, str]:
        member = await self.hs.state_event(action.room_id, "m.room.member", action.user_id)
        membership = member.get("membership") if member else None
        verdict = await self.guests.verdict(
            action.user_id,
            kind_guest=bool(member and member.get("kind") == "guest"),
            new_join=membership == "join",
            fresh=True,
        )
        why_not = policy.confirm_kick(room, membership, verdict)
        if why_not:
            return SKIPPED, why_not
        if room.dry_run:
            return DRY_RUN, f"dry-run: would remove guest {action.user_id} ({membership})"
        await self.hs.kick(action.room_id, action.user_id, action.reason)
        how = "" if self.guests.admin else " (on the kind: guest hint; no admin rights)"
        return DONE, f"removed guest {action.user_id} ({membership}){how}"

    async def _forbid(
        self, action: policy.ForbidGuestAccess, room: RoomFacts, action_id: int
    ) -> tuple[str, str]:
        if not policy.enforces(room) or room.policy is not policy.Policy.FORBID:
            return SKIPPED, "room no longer under the forbid policy"
        current = await self.hs.state_event(action.room_id, "m.room.guest_access")
        outcome = "guest_access was already forbidden"
        if room.dry_run and not (current and current.get("guest_access") == "forbidden"):
            return DRY_RUN, "dry-run: would set guest_access to forbidden"
        if current and current.get("guest_access") == "forbidden":
            if not action.notice:
                return SKIPPED, outcome
        else:
            shielded = await self._shield_former_guests(action.room_id)
            await self.hs.send_state(
                action.room_id, "m.room.guest_access", {"guest_access": "forbidden"}
            )
            outcome = f"set guest_access to forbidden (shielded {shielded} former guests)"
        if action.notice:
            txn_id = f"guardbot-notice-{action_id}"
            await self.hs.send_message(action.room_id, action.notice, action.notice, txn_id)
        return DONE, outcome

    async def _shield_former_guests(self, room_id: str) -> int:
        """Synapse answers guest_access=forbidden by removing every member whose *current*
        member event says `kind: guest`, and an upgraded guest keeps that stale event. Re-send
        such a member's event without `kind` (as them: their numeric ID is in guardbot's
        namespace) so the homeserver's own sweep spares them."""
        shielded = 0
        for event in await self.hs.members(room_id):
            user_id, content = event.get("state_key"), event.get("content")
            if not isinstance(user_id, str) or not isinstance(content, dict):
                continue
            if content.get("kind") != "guest" or content.get("membership") != "join":
                continue
            if not triage.is_guest_candidate(user_id, self.guests.domain, kind_guest=True):
                continue  # another server's user: Synapse's sweep only touches local ones
            verdict = await self.guests.verdict(
                user_id, kind_guest=True, new_join=False, fresh=True
            )
            if verdict is not Verdict.NOT_GUEST:
                continue
            fresh = {k: v for k, v in content.items() if k != "kind"}
            await self.hs.send_state(room_id, "m.room.member", fresh, user_id, as_user=user_id)
            log.info("Shielded former guest %s in %s from the homeserver's sweep", user_id, room_id)
            shielded += 1
        return shielded

    async def _sweep(self, action: policy.Sweep, room: RoomFacts) -> tuple[str, str]:
        if not policy.enforces(room):
            return SKIPPED, "room no longer listed or policy off"
        members = await self.hs.members(action.room_id)
        kicks: list[Action] = []
        unsure = 0
        for event in members:
            user_id, content = event.get("state_key"), event.get("content")
            if not isinstance(user_id, str) or not isinstance(content, dict):
                continue
            kind_guest = content.get("kind") == "guest"
            if not triage.is_guest_candidate(user_id, self.guests.domain, kind_guest):
                continue
            membership = str(content.get("membership"))
            # Not a new join: a stale `kind` alone never condemns anyone found by a sweep.
            verdict = await self.guests.verdict(user_id, kind_guest=kind_guest, new_join=False)
            unsure += verdict is Verdict.UNKNOWN and membership in ("join", "invite")
            kicks += policy.decide_sweep_member(
                room, user_id, str(event.get("event_id", "")), membership, verdict
            )
        added = await self.store.add(kicks, now_ms())
        if added:
            self.wakeup.set()
        note = (
            f"; {unsure} members could not be checked (guardbot needs admin rights)"
            if unsure
            else ""
        )
        return DONE, f"{len(members)} members, {len(kicks)} guests to remove{note}"

    # -- when the homeserver says no -------------------------------------------------------
    async def _retry(self, queued: QueuedAction, e: HomeserverError) -> None:
        action = queued.action
        backoff_ms = min(2_000 * 2**queued.attempts, MAX_BACKOFF_S * 1000)
        if e.status == 429:
            delay = e.retry_after_ms if e.retry_after_ms is not None else backoff_ms
            why = "rate-limited by the homeserver"
            kind = type(action).__name__
            self.limited_until[kind] = max(self.limited_until.get(kind, 0), now_ms() + delay)
        elif e.transient:
            delay, why = backoff_ms, f"{UNREACHABLE} ({e})"
        elif e.not_in_room:
            delay = backoff_ms
            why = f"guardbot is not in {action.room_id}"
            if self.config["bot.auto_join_listed_rooms"] and self.guests.admin:
                delay = 0
                why += "; joining it through the admin API"
                try:
                    await self.hs.admin_join(action.room_id)
                except HomeserverError as join_error:
                    delay = backoff_ms
                    why += f" failed ({join_error})"
            else:
                why += (
                    f": invite {self.bot} and give it power to kick and to change guest access"
                    " (or set bot.auto_join_listed_rooms with admin rights)"
                )
        elif e.status == 403:
            delay = backoff_ms
            why = (
                f"guardbot lacks power in {action.room_id} ({e.error}): give {self.bot} a power"
                " level that may kick and send m.room.guest_access, e.g. moderator (50)"
            )
        else:
            log.error("%s in %s failed for good: %s", type(action).__name__, action.room_id, e)
            await self._finish(queued, FAILED, str(e))
            return
        await self.store.retry_at(queued.id, now_ms() + delay, why)
        cause = "rate_limit" if e.status == 429 else "homeserver" if e.transient else "room"
        metrics.ACTIONS_RETRIED.labels(type(action).__name__, cause).inc()
        log.warning(
            "%s in %s not done: %s; retrying in %.1fs",
            type(action).__name__,
            action.room_id,
            why,
            delay / 1000,
        )
