"""A decision: what the policy core answers to one observation.

Actions to queue, audit records that explain them, and records of what guardbot now knows or
was told (a room's policy, a dry-run switch, a room's place in the directory, a named guest's
reminders ending). The evaluator stores all of it and drops the observation in one database
transaction, so a decision is kept whole or not at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from guardbot.core.actions import Action, ActionState


@dataclass(frozen=True)
class AuditRecord:
    at: int
    actor: str  # who decided or did it: guardbot, or the user whose command it was
    what: str  # e.g. "decide Kick", "Kick", "policy", "dryrun"
    room_id: str | None
    user_id: str | None
    why: str
    result: str
    dry_run: bool = False
    state: ActionState | None = None  # for an action's outcome: how it ended

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RoomPolicySetting:
    """What a room's admins chose, from the room's own policy state event."""

    room_id: str
    policy: str
    reason: str | None
    set_by: str
    event_id: str
    set_at: int


@dataclass(frozen=True)
class DryRunSwitch:
    room_id: str  # GLOBAL for every room
    enabled: bool
    set_by: str
    set_at: int


GLOBAL = ""  # the dry-run switch that applies to every room


@dataclass(frozen=True)
class RoomClassified:
    """guardbot looked a room up in the directory on its own (before the next poll)."""

    room_id: str
    listed: bool
    at: int


@dataclass(frozen=True)
class RoomWoken:
    """Something changed in the room (power, guardbot's membership): retry its actions now."""

    room_id: str


@dataclass(frozen=True)
class WatchDirectory:
    """Look for the room in the directory shortly, not at the next poll: it is being
    published. Kept in memory only, by the process that acts."""

    room_id: str


@dataclass(frozen=True)
class HomeserverAnswers:
    """The homeserver answers again after failing: whatever waited only for it (actions,
    reminders) goes now, not when its own backoff runs out."""

    at: int


@dataclass(frozen=True)
class Reported:
    """The management room's report has told every finished action up to this one."""

    done_at: int
    action_id: int


@dataclass(frozen=True)
class RemindersEnded:
    """A named guest gets no more reminders."""

    user_id: str
    reason: str
    password_set: bool = False  # and their password is their own: claim links are spent


@dataclass(frozen=True)
class ReminderQueued:
    """Reminder n is decided (queued as a `Remind`): the next is not due until it has gone."""

    user_id: str
    n: int


@dataclass(frozen=True)
class ReminderCounted:
    """Reminder n went out; the next is due at `next_at` (None: it was the last)."""

    user_id: str
    n: int
    next_at: int | None


@dataclass(frozen=True)
class DmLeft:
    """A named guest left the DM: the next reminder invites them back, once."""

    user_id: str


@dataclass(frozen=True)
class NamedGuestForgotten:
    """The server admin dropped a named guest: no reminders, claim links dead."""

    user_id: str
    dm_room_id: str | None  # no longer a conversation


@dataclass(frozen=True)
class SuspensionBegan:
    """guardbot suspended this idle named guest at `at` (deactivation counts from it)."""

    user_id: str
    at: int


@dataclass(frozen=True)
class SuspensionEnded:
    """The suspension is over: lifted (a password was set) or the account ended."""

    user_id: str
    why: str


Record = (
    RoomPolicySetting
    | DryRunSwitch
    | RoomClassified
    | RoomWoken
    | WatchDirectory
    | HomeserverAnswers
    | Reported
    | RemindersEnded
    | ReminderQueued
    | ReminderCounted
    | DmLeft
    | NamedGuestForgotten
    | SuspensionBegan
    | SuspensionEnded
)


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...] = ()
    audit: tuple[AuditRecord, ...] = ()
    records: tuple[Record, ...] = field(default=())

    def __add__(self, other: Decision) -> Decision:
        return Decision(
            self.actions + other.actions, self.audit + other.audit, self.records + other.records
        )


NOTHING = Decision()
