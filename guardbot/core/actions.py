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


Action = Kick | ForbidGuestAccess | ShieldFormerGuest | Sweep | JoinRoom | Notice | SetRoomPolicy
ACTIONS: dict[str, type] = {
    cls.__name__: cls
    for cls in (Kick, ForbidGuestAccess, ShieldFormerGuest, Sweep, JoinRoom, Notice, SetRoomPolicy)
}
# Actions that change who is in a room or who may enter: the ones dry-run holds back.
ENFORCING = (Kick, ForbidGuestAccess)
# Actions whose decision and outcome go into the audit log.
AUDITED = (Kick, ForbidGuestAccess, ShieldFormerGuest, Sweep, SetRoomPolicy, JoinRoom)


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended, in a state the code reads and words a person reads."""

    state: ActionState
    text: str
