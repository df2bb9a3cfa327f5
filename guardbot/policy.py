"""The core: what guardbot should do, decided from an observation and known facts. No I/O here.

Inputs come in two steps. `triage` turns a raw homeserver event into an Observation, or None for
the (many) events guardbot does not care about; it must stay cheap because every event of every
room a guest sits in passes through it. The `decide_*` functions then take an observation plus
facts gathered by the adapters (is the room listed? is the user a guest?) and return Actions.
`confirm_*` re-check a queued action against fresh facts right before it is carried out.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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


class MalformedEvent(ValueError):
    """An event that claims to be one guardbot cares about but has the wrong shape."""


# -- observations ---------------------------------------------------------------------------
@dataclass(frozen=True)
class MemberChange:
    """A guest candidate's membership changed (joined, was invited, renamed...)."""

    room_id: str
    user_id: str
    event_id: str
    membership: str
    prev_membership: str | None
    kind_guest: bool  # content.kind == "guest": a hint, never proof

    @property
    def new_join(self) -> bool:
        return self.membership == "join" and self.prev_membership != "join"


@dataclass(frozen=True)
class GuestAccessChange:
    room_id: str
    event_id: str
    sender: str
    guest_access: str | None


@dataclass(frozen=True)
class BotMembership:
    """guardbot itself was invited, joined, or left."""

    room_id: str
    event_id: str
    membership: str


@dataclass(frozen=True)
class PowerChange:
    """Power levels changed: actions waiting for power may now succeed."""

    room_id: str
    event_id: str


@dataclass(frozen=True)
class RoomListed:
    """The room appeared in the public directory (from the poller or a look-up)."""

    room_id: str
    listed_at: int  # ms; tells one listing apart from a later re-listing


@dataclass(frozen=True)
class Message:
    """Something said to guardbot: a `!guardbot` command anywhere, or any message in a room
    where guardbot holds a conversation (the management room, a PWLU's DM)."""

    room_id: str
    event_id: str
    sender: str
    body: str


@dataclass(frozen=True)
class ConversationMember:
    """Someone other than guardbot joined or left a room where guardbot holds a conversation."""

    room_id: str
    event_id: str
    user_id: str
    membership: str


@dataclass(frozen=True)
class RoomPolicyChange:
    """A room's own policy state event (set by its admins) changed."""

    room_id: str
    event_id: str
    sender: str
    content: dict[str, Any]


Observation = (
    MemberChange
    | GuestAccessChange
    | BotMembership
    | PowerChange
    | RoomListed
    | Message
    | ConversationMember
    | RoomPolicyChange
)
OBSERVATIONS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        MemberChange,
        GuestAccessChange,
        BotMembership,
        PowerChange,
        RoomListed,
        Message,
        ConversationMember,
        RoomPolicyChange,
    )
}
POLICY_EVENT = "dev.guardbot.policy"
COMMAND_PREFIX = "!guardbot"


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


Action = Kick | ForbidGuestAccess | Sweep | JoinRoom
ACTIONS: dict[str, type] = {cls.__name__: cls for cls in (Kick, ForbidGuestAccess, Sweep, JoinRoom)}


@dataclass(frozen=True)
class RoomFacts:
    room_id: str
    listed: bool
    policy: Policy
    kick_reason: str
    restore_notice: str


# -- triage ---------------------------------------------------------------------------------
def localpart_is_numeric(user_id: str) -> bool:
    localpart = user_id[1 : user_id.find(":")]
    return localpart.isascii() and localpart.isdigit()


def is_guest_candidate(user_id: str, domain: str, kind_guest: bool) -> bool:
    """Could this user be a guest at all? Local guests always get numeric IDs; for a remote user
    the only evidence guardbot can have is the `kind: guest` their server put on the event."""
    if user_id.endswith(":" + domain):
        return localpart_is_numeric(user_id)
    return kind_guest


def _str(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{key} is not a string")
    return value


def triage(
    event: Any, domain: str, bot_user_id: str, conversations: Collection[str] = ()
) -> Observation | None:
    """Pick out the events that can matter; None for everything else. `conversations` are the
    rooms where guardbot talks with people (management room, DMs): there every message counts."""
    if not isinstance(event, dict):
        raise MalformedEvent("event is not an object")
    etype = event.get("type")
    if etype == "m.room.message":
        return _triage_message(event, bot_user_id, conversations)
    if etype == "m.room.member":
        return _triage_member(event, domain, bot_user_id, conversations)
    if etype == "m.room.guest_access" and event.get("state_key") == "":
        content = event.get("content")
        value = content.get("guest_access") if isinstance(content, dict) else None
        return GuestAccessChange(
            room_id=_str(event, "room_id"),
            event_id=_str(event, "event_id"),
            sender=_str(event, "sender"),
            guest_access=value if isinstance(value, str) else None,
        )
    if etype == "m.room.power_levels" and event.get("state_key") == "":
        return PowerChange(room_id=_str(event, "room_id"), event_id=_str(event, "event_id"))
    if etype == POLICY_EVENT and event.get("state_key") == "":
        content = event.get("content")
        return RoomPolicyChange(
            room_id=_str(event, "room_id"),
            event_id=_str(event, "event_id"),
            sender=_str(event, "sender"),
            content=content if isinstance(content, dict) else {},
        )
    return None


def _triage_message(
    event: dict[str, Any], bot_user_id: str, conversations: Collection[str]
) -> Message | None:
    content = event.get("content")
    body = content.get("body") if isinstance(content, dict) else None
    if not isinstance(body, str) or event.get("sender") == bot_user_id:
        return None
    if event.get("room_id") not in conversations and not body.startswith(COMMAND_PREFIX):
        return None
    return Message(
        room_id=_str(event, "room_id"),
        event_id=_str(event, "event_id"),
        sender=_str(event, "sender"),
        body=body,
    )


def _triage_member(
    event: dict[str, Any], domain: str, bot_user_id: str, conversations: Collection[str]
) -> Observation | None:
    user_id = _str(event, "state_key")
    content = event.get("content")
    if not isinstance(content, dict):
        raise MalformedEvent("content is not an object")
    membership = content.get("membership")
    if not isinstance(membership, str):
        raise MalformedEvent("membership is not a string")
    if user_id == bot_user_id:
        return BotMembership(_str(event, "room_id"), _str(event, "event_id"), membership)
    if event.get("room_id") in conversations:
        return ConversationMember(
            _str(event, "room_id"), _str(event, "event_id"), user_id, membership
        )
    if membership not in ("join", "invite"):
        return None
    kind_guest = content.get("kind") == "guest"
    if not is_guest_candidate(user_id, domain, kind_guest):
        return None
    unsigned = event.get("unsigned")
    prev = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
    prev_membership = prev.get("membership") if isinstance(prev, dict) else None
    return MemberChange(
        room_id=_str(event, "room_id"),
        user_id=user_id,
        event_id=_str(event, "event_id"),
        membership=membership,
        prev_membership=prev_membership if isinstance(prev_membership, str) else None,
        kind_guest=kind_guest,
    )


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
    if not enforces(room):
        return []
    return _close_and_sweep(room, cause=f"listed:{listing.listed_at}")


def _close_and_sweep(room: RoomFacts, cause: str) -> list[Action]:
    sweep = Sweep(room.room_id, cause=cause)
    if room.policy is Policy.FORBID:
        return [ForbidGuestAccess(room.room_id, cause=cause), sweep]
    return [sweep]


def decide_bot_membership(change: BotMembership, room: RoomFacts) -> list[Action]:
    """Accept invites; once in a listed room, look at who is already there."""
    if change.membership == "invite":
        return [JoinRoom(room.room_id, cause=change.event_id)]
    if change.membership == "join" and enforces(room):
        # Caused by this join event, so a later re-join closes the room and sweeps it again.
        return _close_and_sweep(room, cause=change.event_id)
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
