"""What guardbot does to the homeserver, and the typed states an action goes through.

Actions are frozen values: decided by the policy, stored in the queue, carried out by the
executor. `key` makes a decision idempotent: the queue never takes the same key twice.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class ActionState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"  # no longer applies (re-checked right before acting)
    FAILED = "failed"  # refused for good
    DRY_RUN = "dry_run"  # decided and recorded, deliberately not done


class WaitingOn(StrEnum):
    """Why a pending action waits for a retry: what has to change before it goes again."""

    HOMESERVER = "homeserver"  # unreachable or failing: retried at once when it answers again
    RATE_LIMIT = "rate_limit"  # M_LIMIT_EXCEEDED: the wait the homeserver named
    ROOM = "room"  # guardbot lacks membership or power there: retried when that changes


@dataclass(frozen=True)
class Kick:
    room_id: str
    user_id: str
    reason: str
    cause: str  # the member event that made the user a target
    joined_at: int | None = None  # that event's time at the homeserver (a join's, an invite's)

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
class ShieldFormerGuest:
    """Re-send an upgraded former guest's member event without its stale `kind: guest`, as
    them, before the room is closed to guests: Synapse's own sweep would remove them."""

    room_id: str
    user_id: str
    cause: str

    @property
    def key(self) -> str:
        return f"shield|{self.room_id}|{self.user_id}|{self.cause}"


@dataclass(frozen=True)
class Sweep:
    """List everyone in the room; each member found comes back as an observation."""

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
    """Say something in a room (a command's answer, an explanation, a reply in a DM)."""

    room_id: str
    text: str
    html: str
    cause: str

    @property
    def key(self) -> str:
        return f"notice|{self.room_id}|{self.cause}"


def notice(room_id: str, lines: list[str], cause: str) -> Notice:
    """Lines said as one notice: plain text, and HTML with the first line as a heading."""
    text = "\n".join(lines)
    head, *rest = [html.escape(line) for line in lines]
    items = "".join(f"<li>{line.lstrip('• ')}</li>" for line in rest)
    body = f"<p><strong>{head}</strong></p>" + (f"<ul>{items}</ul>" if items else "")
    return Notice(room_id, text, body, cause)


@dataclass(frozen=True)
class SetRoomPolicy:
    """Write the room's policy state event, on behalf of a room admin's command."""

    room_id: str
    content: dict[str, Any]
    cause: str

    @property
    def key(self) -> str:
        return f"setpolicy|{self.room_id}|{self.cause}"


# -- a named guest's: carried out for one person, in their DM or their rooms ---------------------


@dataclass(frozen=True)
class Remind:
    """Send reminder n to a named guest, in their DM (made, or invited back to, as needed),
    with a fresh claim link. `due_at` is when it fell due: the next is counted from it."""

    user_id: str
    n: int
    due_at: int
    cause: str  # the named guest's registration (created_at), so a new account starts over

    @property
    def key(self) -> str:
        return f"remind|{self.user_id}|{self.cause}|{self.n}"


@dataclass(frozen=True)
class TellPasswordSet:
    """Tell a named guest, in their DM, that their account's password was set, and how."""

    user_id: str
    how: str
    cause: str  # when it was set

    @property
    def key(self) -> str:
        return f"password-set|{self.user_id}|{self.cause}"


@dataclass(frozen=True)
class CarryOver:
    """A guest became a named guest: the new account joins the guest's rooms and the guest
    leaves each one the new account got into."""

    user_id: str
    guest_id: str
    cause: str  # when the account was registered

    @property
    def key(self) -> str:
        return f"carry-over|{self.user_id}|{self.guest_id}|{self.cause}"


# -- an account's end: carried out on one account, through the admin API ----------------------


@dataclass(frozen=True)
class Suspend:
    """Suspend an idle named guest (reversible: Synapse's suspend admin API). `idle_since` is
    the last activity the decision saw: if the account was used since, it is not suspended."""

    user_id: str
    idle_since: int

    @property
    def key(self) -> str:
        return f"suspend|{self.user_id}|{self.idle_since}"


@dataclass(frozen=True)
class Deactivate:
    """Deactivate an idle guest, or a named guest whose suspension ran out (`suspended_at`)."""

    user_id: str
    idle_since: int
    erase: bool
    suspended_at: int | None = None

    @property
    def key(self) -> str:
        return f"deactivate|{self.user_id}|{self.idle_since}|{self.suspended_at}"


@dataclass(frozen=True)
class Unsuspend:
    """Lift guardbot's suspension: the named guest set a password."""

    user_id: str
    suspended_at: int

    @property
    def key(self) -> str:
        return f"unsuspend|{self.user_id}|{self.suspended_at}"


@dataclass(frozen=True)
class MarkNamedGuest:
    """Set a named guest's `user_type` for admin tools (pwlu.user_type) while passwordless;
    `user_type` None clears the mark (they set a password)."""

    user_id: str
    user_type: str | None
    cause: str

    @property
    def key(self) -> str:
        return f"user-type|{self.user_id}|{self.user_type}|{self.cause}"


Action = (
    Kick
    | ForbidGuestAccess
    | ShieldFormerGuest
    | Sweep
    | JoinRoom
    | Notice
    | SetRoomPolicy
    | Remind
    | TellPasswordSet
    | CarryOver
    | MarkNamedGuest
    | Suspend
    | Deactivate
    | Unsuspend
)
ACTIONS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        Kick,
        ForbidGuestAccess,
        ShieldFormerGuest,
        Sweep,
        JoinRoom,
        Notice,
        SetRoomPolicy,
        Remind,
        TellPasswordSet,
        CarryOver,
        MarkNamedGuest,
        Suspend,
        Deactivate,
        Unsuspend,
    )
}
# Actions that change who is in a room or who may enter: the ones dry-run holds back.
ENFORCING = (Kick, ForbidGuestAccess)
# Actions whose decision and outcome go into the audit log.
AUDITED = (
    Kick,
    ForbidGuestAccess,
    ShieldFormerGuest,
    Sweep,
    SetRoomPolicy,
    JoinRoom,
    Remind,
    TellPasswordSet,
    CarryOver,
    MarkNamedGuest,
    Suspend,
    Deactivate,
    Unsuspend,
)
# Actions about an account's end (expiry): held to the expiry's own dry-run.
ACCOUNT_ENDS = (Suspend, Deactivate, Unsuspend)
# Actions carried out for one person rather than in one room.
PERSONAL = (Remind, TellPasswordSet, CarryOver, MarkNamedGuest, *ACCOUNT_ENDS)


def lane(action: Action) -> str:
    """What an action must not overtake: its room's earlier actions, or, for a personal one,
    that person's."""
    return action.user_id if isinstance(action, PERSONAL) else action.room_id


def reason(action: Action) -> str:
    """Why the action was taken, for its audit record."""
    match action:
        case Remind():
            return f"reminder {action.n} fell due"
        case TellPasswordSet():
            return f"their password was set {action.how}"
        case CarryOver():
            return f"{action.guest_id} became {action.user_id}"
        case Deactivate() if action.suspended_at is not None:
            return f"suspended since {action.suspended_at} and never lifted"
        case Suspend() | Deactivate():
            return f"idle since {action.idle_since}"
        case Unsuspend():
            return "they set a password"
        case MarkNamedGuest():
            return "registered as a named guest" if action.user_type else "they set a password"
    return f"caused by {action.cause}"


def room_of(action: Action) -> str | None:
    return None if isinstance(action, PERSONAL) else action.room_id


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, in a state the code reads and words a person reads."""

    state: ActionState
    text: str
