"""The core: what guardbot should do, decided from an observation and known facts. No I/O here.

The adapters turn homeserver events into observations (triage.py) and gather facts (is the room
listed? is the user a guest?); the `decide_*` functions here return Actions. `confirm_*` re-check
a queued action against fresh facts right before it is carried out.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from guardbot.core.observations import (
    BotMembership,
    GuestAccessChange,
    MemberChange,
    RoomListed,
    RoomPolicyChange,
)


class Policy(StrEnum):
    FORBID = "forbid"
    KICK = "kick"
    OFF = "off"

    @classmethod
    def values(cls) -> list[str]:
        return [p.value for p in cls]


class Verdict(StrEnum):
    """How sure guardbot is about a user being a guest. Only GUEST ever leads to a removal."""

    GUEST = "guest"
    NOT_GUEST = "not_guest"
    UNKNOWN = "unknown"


# -- actions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Kick:
    room_id: str
    user_id: str
    reason: str
    cause: str  # the member event that made the user a target

    @property
    def key(self) -> str:
        return f"kick|{self.room_id}|{self.user_id}|{self.cause}"


@dataclass(frozen=True)
class ForbidGuestAccess:
    room_id: str
    cause: str
    notice: str | None = None  # said in the room when guardbot undoes someone's change

    @property
    def key(self) -> str:
        return f"forbid|{self.room_id}|{self.cause}"


@dataclass(frozen=True)
class Sweep:
    """Look at everyone in the room and queue a Kick per guest."""

    room_id: str
    cause: str

    @property
    def key(self) -> str:
        return f"sweep|{self.room_id}|{self.cause}"


@dataclass(frozen=True)
class JoinRoom:
    room_id: str
    cause: str

    @property
    def key(self) -> str:
        return f"join|{self.room_id}|{self.cause}"


@dataclass(frozen=True)
class Notice:
    """Say something in a room (a command's answer, an explanation)."""

    room_id: str
    text: str
    html: str
    cause: str

    @property
    def key(self) -> str:
        return f"notice|{self.room_id}|{self.cause}"


@dataclass(frozen=True)
class SetRoomPolicy:
    """Write the room's policy state event, on behalf of a room admin's command."""

    room_id: str
    content: dict[str, Any]
    cause: str

    @property
    def key(self) -> str:
        return f"setpolicy|{self.room_id}|{self.cause}"


Action = Kick | ForbidGuestAccess | Sweep | JoinRoom | Notice | SetRoomPolicy
ACTIONS: dict[str, type] = {
    cls.__name__: cls for cls in (Kick, ForbidGuestAccess, Sweep, JoinRoom, Notice, SetRoomPolicy)
}
# Actions that change who is in a room or who may enter: the ones dry-run holds back.
ENFORCING = (Kick, ForbidGuestAccess)


@dataclass(frozen=True)
class RoomFacts:
    room_id: str
    listed: bool
    policy: Policy
    kick_reason: str
    restore_notice: str
    policy_source: str = "server default"
    dry_run: bool = False


# -- decisions ------------------------------------------------------------------------------
def enforces(room: RoomFacts) -> bool:
    return room.listed and room.policy is not Policy.OFF


def decide_member(change: MemberChange, room: RoomFacts, verdict: Verdict) -> list[Action]:
    """A guest joined or was invited into a room."""
    if not enforces(room) or verdict is not Verdict.GUEST:
        return []
    if change.membership not in ("join", "invite"):
        return []
    kick = Kick(room.room_id, change.user_id, room.kick_reason, cause=change.event_id)
    if room.policy is Policy.FORBID:
        # Close the door first, so the next guest is refused by the homeserver itself.
        return [ForbidGuestAccess(room.room_id, cause=change.event_id), kick]
    return [kick]


def decide_guest_access(
    change: GuestAccessChange, room: RoomFacts, bot_user_id: str
) -> list[Action]:
    """Someone opened a listed `forbid` room to guests: close it again and say why."""
    if not enforces(room) or room.policy is not Policy.FORBID:
        return []
    # Only "can_join" lets guests in; anything else (or nothing) the homeserver reads as forbidden.
    if change.guest_access != "can_join" or change.sender == bot_user_id:
        return []
    return [ForbidGuestAccess(room.room_id, cause=change.event_id, notice=room.restore_notice)]


def decide_listed(listing: RoomListed, room: RoomFacts) -> list[Action]:
    """A room became listed: the guests already inside are handled by its policy."""
    return close_and_sweep(room, cause=f"listed:{listing.listed_at}")


def close_and_sweep(room: RoomFacts, cause: str) -> list[Action]:
    """Apply the room's policy to everyone already in it."""
    if not enforces(room):
        return []
    sweep = Sweep(room.room_id, cause=cause)
    if room.policy is Policy.FORBID:
        return [ForbidGuestAccess(room.room_id, cause=cause), sweep]
    return [sweep]


def decide_bot_membership(change: BotMembership, room: RoomFacts) -> list[Action]:
    """Accept invites; once in a listed room, look at who is already there."""
    if change.membership == "invite":
        return [JoinRoom(room.room_id, cause=change.event_id)]
    if change.membership == "join":
        # Caused by this join event, so a later re-join closes the room and sweeps it again.
        return close_and_sweep(room, cause=change.event_id)
    return []


def decide_sweep_member(
    room: RoomFacts, user_id: str, event_id: str, membership: str, verdict: Verdict
) -> list[Action]:
    """One member found while sweeping a room."""
    if not enforces(room) or verdict is not Verdict.GUEST or membership not in ("join", "invite"):
        return []
    return [Kick(room.room_id, user_id, room.kick_reason, cause=event_id)]


def confirm_kick(room: RoomFacts, membership: str | None, verdict: Verdict) -> str | None:
    """Right before kicking: None if the kick still stands, else why it no longer does."""
    if not room.listed:
        return "room is no longer listed"
    if room.policy is Policy.OFF:
        return "room policy is off"
    if membership not in ("join", "invite"):
        return f"user already gone ({membership or 'never joined'})"
    if verdict is not Verdict.GUEST:
        return f"user is not certainly a guest ({verdict.value})"
    return None


@dataclass(frozen=True)
class PolicyRuling:
    """What becomes of a room admin's policy event: accepted (policy set) or why not."""

    policy: Policy | None
    reason: str | None
    set_by: str
    explanation: str


def judge_room_policy(
    change: RoomPolicyChange, sender_may: bool, allowed: list[str], bot_user_id: str
) -> PolicyRuling:
    """A room's policy state event: from someone allowed to send it, naming a choice the
    server admin lets rooms make? guardbot writes the event itself for a command, after
    checking the commanding user, who is named in `set_by`."""
    content = change.content
    set_by = change.sender
    if change.sender == bot_user_id and isinstance(content.get("set_by"), str):
        set_by = content["set_by"]
    elif not sender_may:
        return PolicyRuling(None, None, set_by, f"{set_by} may not set guardbot's policy here")
    choice = content.get("listed_rooms")
    if choice not in Policy.values():
        return PolicyRuling(
            None, None, set_by, f"listed_rooms must be one of {', '.join(Policy.values())}"
        )
    if choice not in allowed:
        return PolicyRuling(
            None,
            None,
            set_by,
            f"the server admin does not let rooms choose {choice!r} here"
            f" (allowed: {', '.join(allowed)})",
        )
    reason = content.get("reason")
    reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
    return PolicyRuling(Policy(choice), reason, set_by, f"policy is now {choice}, set by {set_by}")
