"""Carries out the guard's actions in rooms, each as the evaluator decides: gather the facts
as they are now, confirm with the core's own rule (guardbot/core/policy.py), then act.

The confirmation right before acting is what makes a retry after a crash, or a second route
to the same decision, do nothing the homeserver has not already seen done. A sweep and a
forbid that finds former guests decide nothing themselves: what they find goes back to the
inbox as observations, stored in the transaction that finishes the action.
"""

from __future__ import annotations

from typing import Any

from guardbot.core import observations, policy
from guardbot.core.actions import (
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
)
from guardbot.core.clock import Clock
from guardbot.core.observations import FormerGuestsFound, MemberFound, Observation
from guardbot.core.policy import Verdict
from guardbot.db import ActionStore, QueuedAction
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver, HomeserverError

DONE, SKIPPED, DRY_RUN = ActionState.DONE, ActionState.SKIPPED, ActionState.DRY_RUN

# The action types this carrier carries out (the executor's map of carriers).
ROOM_ACTIONS = (Kick, ForbidGuestAccess, ShieldFormerGuest, Sweep, JoinRoom, Notice, SetRoomPolicy)


class RoomCarrier:
    def __init__(
        self,
        *,
        hs: Homeserver,
        store: ActionStore,
        guests: GuestOracle,
        rooms: RoomFactSource,
        clock: Clock,
    ) -> None:
        self.hs = hs
        self.store = store
        self.guests = guests
        self.rooms = rooms
        self.clock = clock

    async def carry_out(self, queued: QueuedAction, found: list[Observation]) -> Outcome:
        action: Action = queued.action
        match action:
            case Kick():
                return await self._kick(queued, action)
            case ForbidGuestAccess():
                return await self._forbid(queued, action, found)
            case ShieldFormerGuest():
                return await self._shield(action)
            case Sweep():
                return await self._sweep(action, found)
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
        return Outcome(ActionState.FAILED, f"not a room action: {type(action).__name__}")

    async def _kick(self, queued: QueuedAction, action: Kick) -> Outcome:
        # Gather.
        room = await self.rooms.facts(action.room_id)
        event = await self.hs.state_event(
            action.room_id, "m.room.member", action.user_id, format_event=True
        )
        member = _content(event)
        membership = member.get("membership") if member else None
        started_at = queued.started_at
        if started_at is not None and policy.kick_landed(
            event, bot=self.hs.bot_user_id, why=action.reason, started_at=started_at
        ):
            self.guests.invalidate(action.user_id)
            return Outcome(DONE, f"removed guest {action.user_id} (before a restart)")
        verdict = await self.guests.member_verdict(
            action.room_id, action.user_id, event, fresh=True
        )
        # Confirm.
        why_not = policy.why_not_removed(room, membership, verdict)
        if why_not:
            return Outcome(SKIPPED, why_not)
        if room.dry_run:
            return Outcome(DRY_RUN, f"dry-run: would remove guest {action.user_id} ({membership})")
        # Act: marked as begun first, so a crash before the answer is recognised afterwards.
        await self.store.started(queued.id, self.clock.now_ms())
        await self.hs.kick(action.room_id, action.user_id, action.reason)
        # A kicked guest may be upgraded the next moment (no event says so): whatever comes
        # next about them asks the homeserver again, not this "guest" answer.
        self.guests.invalidate(action.user_id)
        how = "" if self.guests.admin else " (on the kind: guest hint; no admin rights)"
        return Outcome(DONE, f"removed guest {action.user_id} ({membership}){how}")

    async def _forbid(
        self, queued: QueuedAction, action: ForbidGuestAccess, found: list[Observation]
    ) -> Outcome:
        room = await self.rooms.facts(action.room_id)
        why_not = policy.confirm_forbid(room)
        if why_not:
            return Outcome(SKIPPED, why_not)
        current = await self.hs.state_event(action.room_id, "m.room.guest_access")
        already = bool(current and current.get("guest_access") == "forbidden")
        if already and not action.notice:
            return Outcome(SKIPPED, "guest_access was already forbidden")
        if room.dry_run and not already:
            return Outcome(DRY_RUN, "dry-run: would set guest_access to forbidden")
        outcome = "guest_access was already forbidden"
        if not already:
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
            txn_id = f"guardbot-notice-{queued.id}"
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
        verdict = Verdict.UNKNOWN
        if policy.why_not_shielded(member, Verdict.NOT_GUEST) is None:
            verdict = await self.guests.verdict(
                user_id, kind_guest=True, new_join=False, fresh=True
            )
        why_not = policy.why_not_shielded(member, verdict)
        if why_not or member is None:
            return Outcome(SKIPPED, f"{user_id}: {why_not}")
        fresh = {k: v for k, v in member.items() if k != "kind"}
        await self.hs.send_state(room_id, "m.room.member", fresh, user_id, as_user=user_id)
        return Outcome(DONE, f"re-sent {user_id}'s member event without kind: guest")

    async def _sweep(self, action: Sweep, found: list[Observation]) -> Outcome:
        why_not = policy.confirm_sweep(await self.rooms.facts(action.room_id))
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
            joined_as_guest = None
            if not self.guests.is_local(user_id) and membership == "join":
                # A rename drops `kind` from another server's guest: look at their join.
                joined_as_guest = await self.guests.joined_as_guest(action.room_id, event)
                kind_guest = kind_guest or joined_as_guest
            if not observations.is_guest_candidate(
                user_id, self.guests.domain, kind_guest, named_guests_too=self.guests.link_only
            ):
                continue
            event_id = event.get("event_id")
            event_id = event_id if isinstance(event_id, str) else f"{action.key}|{user_id}"
            found.append(
                MemberFound(
                    action.room_id, user_id, event_id, membership, kind_guest, joined_as_guest
                )
            )
        return Outcome(DONE, f"{len(members)} members, {len(found)} guest candidates to check")

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


def _content(event: Any) -> dict[str, Any] | None:
    content = event.get("content") if isinstance(event, dict) else None
    return content if isinstance(content, dict) else None
