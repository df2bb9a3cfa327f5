"""Observations: what guardbot saw, as typed values. Every input becomes one of these before
anything is decided: homeserver events (through `triage`), directory changes, members found by
a sweep, the homeserver answering again after an outage, messages people send.

`triage` must stay cheap: every event of every room a guest sits in passes through it, and
almost all of them are chat that guardbot drops at the first check.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any


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
    at: int | None = None  # the event's origin_server_ts

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
    sender: str = ""  # who invited guardbot, for invites


@dataclass(frozen=True)
class PowerChange:
    """Power levels changed: actions waiting for power may now succeed."""

    room_id: str
    event_id: str


@dataclass(frozen=True)
class RoomUpgraded:
    """A room guardbot is in was replaced (m.room.tombstone): the conversation moves on."""

    room_id: str
    event_id: str
    sender: str
    replacement_room: str


@dataclass(frozen=True)
class RoomListed:
    """The room appeared in the public directory (from the poller or a look-up)."""

    room_id: str
    listed_at: int  # ms; tells one listing apart from a later re-listing


@dataclass(frozen=True)
class MembersChanged:
    """A listed room's joined-member count in the directory moved since the last poll: someone
    came or went, whether or not guardbot saw the event (the homeserver can lose them)."""

    room_id: str
    joined_members: int
    polled_at: int  # ms


@dataclass(frozen=True)
class RecheckDue:
    """Time for the slow re-check of every listed room (directory.recheck_every): it catches
    what a count cannot, e.g. a member leaving while a guest joins."""

    at: int  # ms


@dataclass(frozen=True)
class MemberFound:
    """A member seen while sweeping a room (not a new join: a stale `kind` alone never
    condemns anyone found this way)."""

    room_id: str
    user_id: str
    event_id: str
    membership: str
    kind_guest: bool
    # Another server's member: whether the join that began their membership said guest
    # (guard/guests.py `joined_as_guest`); None for local members (the admin API knows).
    joined_as_guest: bool | None = None


@dataclass(frozen=True)
class HomeserverBack:
    """The homeserver answers again after an outage. It can lose events across its own
    restart (Synapse drops those queued in memory for an appservice: element-hq/synapse#11637),
    so every listed room is swept."""

    at: int  # ms; one sweep per outage


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


@dataclass(frozen=True)
class GuardbotOutside:
    """An action found guardbot outside the room it must act in (an executor's finding)."""

    room_id: str
    at: int


@dataclass(frozen=True)
class FormerGuestsFound:
    """Closing a room to guests found upgraded former guests whose member event still says
    `kind: guest` (an executor's finding): they are shielded first, then the room closed."""

    room_id: str
    user_ids: list[str]
    forbid_cause: str
    notice: str | None
    at: int


@dataclass(frozen=True)
class RoomPublished:
    """The door was asked to let a room into the directory (by whichever process answered it:
    the leader learns of it from the shared inbox, a standby's memory would keep it)."""

    room_id: str
    at: int


@dataclass(frozen=True)
class ReportDue:
    """A timer's: actions finished since the management room's last report."""

    at: int


# -- a named guest's life: timers', sign-up's and the executor's findings -----------------------


@dataclass(frozen=True)
class ReminderDue:
    """A timer's: a named guest's next reminder fell due at `due_at`."""

    user_id: str
    due_at: int


@dataclass(frozen=True)
class ReminderWent:
    """The executor is done with reminder n (its finding), so the next can be scheduled: sent,
    or refused for good by the homeserver (`delivered` false; not tried again)."""

    user_id: str
    n: int
    due_at: int
    at: int
    delivered: bool = True


@dataclass(frozen=True)
class PasswordFound:
    """The derived password no longer works (a reminder's re-check): the user set their own,
    or the account was deactivated."""

    user_id: str
    deactivated: bool
    at: int


@dataclass(frozen=True)
class PasswordSet:
    """A named guest set their password through guardbot (the API or the claim page)."""

    user_id: str
    how: str
    at: int


@dataclass(frozen=True)
class GuestNamed:
    """A guest became a named guest through guardbot's sign-up: its rooms are to carry over."""

    user_id: str
    guest_id: str
    at: int


@dataclass(frozen=True)
class NamedGuestRegistered:
    """A named guest's account was made through guardbot's sign-up."""

    user_id: str
    at: int


NamedGuestObservation = (
    ReminderDue | ReminderWent | PasswordFound | PasswordSet | GuestNamed | NamedGuestRegistered
)


# -- an account's end (expiry) -----------------------------------------------------------------
@dataclass(frozen=True)
class AccountIdle:
    """The expiry pass found an account whose next step is due (core/expiry_rules.py):
    `step` is "suspend" or "deactivate"; `idle_since` the last activity it saw."""

    user_id: str
    step: str
    idle_since: int
    suspended_at: int | None
    at: int


@dataclass(frozen=True)
class AccountSuspended:
    """The homeserver holds the account suspended (guardbot's Suspend, done or found done)."""

    user_id: str
    at: int


@dataclass(frozen=True)
class AccountEnded:
    """The account is deactivated (guardbot's Deactivate, done or found done)."""

    user_id: str
    at: int


ExpiryObservation = AccountIdle | AccountSuspended | AccountEnded

Observation = (
    MemberChange
    | GuestAccessChange
    | BotMembership
    | PowerChange
    | RoomUpgraded
    | RoomListed
    | MembersChanged
    | RecheckDue
    | MemberFound
    | HomeserverBack
    | Message
    | ConversationMember
    | RoomPolicyChange
    | ReportDue
    | RoomPublished
    | GuardbotOutside
    | FormerGuestsFound
    | NamedGuestObservation
    | ExpiryObservation
)
OBSERVATIONS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        MemberChange,
        GuestAccessChange,
        BotMembership,
        PowerChange,
        RoomUpgraded,
        RoomListed,
        MembersChanged,
        RecheckDue,
        MemberFound,
        HomeserverBack,
        Message,
        ConversationMember,
        RoomPolicyChange,
        ReportDue,
        RoomPublished,
        GuardbotOutside,
        FormerGuestsFound,
        ReminderDue,
        ReminderWent,
        PasswordFound,
        PasswordSet,
        GuestNamed,
        NamedGuestRegistered,
        AccountIdle,
        AccountSuspended,
        AccountEnded,
    )
}
POLICY_EVENT = "dev.guardbot.policy"
COMMAND_PREFIX = "!guardbot"


# -- triage ---------------------------------------------------------------------------------
def localpart_is_numeric(user_id: str) -> bool:
    localpart = user_id[1 : user_id.find(":")]
    return localpart.isascii() and localpart.isdigit()


# What the homeserver asks at the door (synapse-http-antispam's callbacks guardbot answers);
# the module is told to send only these.
DOOR_CALLBACKS = ("user_may_join_room", "user_may_invite", "user_may_publish_room")


def is_guest_candidate(
    user_id: str, domain: str, kind_guest: bool, *, named_guests_too: bool = False
) -> bool:
    """Could this user be a guest at all? Local guests always get numeric IDs; for a remote user
    the only evidence guardbot can have is the `kind: guest` their server put on the event.
    `named_guests_too` (policy.named_guests: link_only): any local user may be a named guest
    without a password, who counts as a guest."""
    if user_id.endswith(":" + domain):
        return named_guests_too or localpart_is_numeric(user_id)
    return kind_guest


# A remote guest who renames without end is not followed back for ever: beyond this many
# changes of name or avatar since their join, guardbot is not sure, and does not act.
MAX_RENAMES_FOLLOWED = 50


def join_began_as_guest(event: Any) -> bool | None:
    """Another server's user is a guest for as long as the membership that began with a join
    carrying `kind: guest` lasts: a rename gives a member event without `kind`, and their
    server's admin API cannot be asked. For a member event: whether this join began the
    membership as a guest's (True/False), or None when it only changed the name or avatar of
    an earlier join (look at `replaced_event`)."""
    if not isinstance(event, dict):
        return False
    content, unsigned = event.get("content"), event.get("unsigned")
    if not isinstance(content, dict) or content.get("membership") != "join":
        return False
    prev = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
    if isinstance(prev, dict) and prev.get("membership") == "join":
        return None
    return content.get("kind") == "guest"


def replaced_event(event: dict[str, Any]) -> str | None:
    """The ID of the member event this one replaced (the earlier one of the same join)."""
    unsigned = event.get("unsigned")
    replaced = unsigned.get("replaces_state") if isinstance(unsigned, dict) else None
    return replaced if isinstance(replaced, str) else None


def _str(event: dict[str, Any], key: str) -> str:
    value = event.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{key} is not a string")
    # IDs become database keys: NUL (PostgreSQL refuses it) or a lone surrogate (no UTF-8 for
    # it) would fail the whole transaction. No Matrix ID has control characters anyway.
    if not value.isprintable():
        raise MalformedEvent(f"{key} has unprintable characters")
    return value


def triage(
    event: Any,
    domain: str,
    bot_user_id: str,
    conversations: Collection[str] = (),
    *,
    named_guests_too: bool = False,
) -> Observation | None:
    """Pick out the events that can matter; None for everything else. `conversations` are the
    rooms where guardbot talks with people (management room, DMs): there every message counts."""
    if not isinstance(event, dict):
        raise MalformedEvent("event is not an object")
    etype = event.get("type")
    if etype == "m.room.message":
        return _triage_message(event, bot_user_id, conversations)
    if etype == "m.room.member":
        return _triage_member(event, domain, bot_user_id, conversations, named_guests_too)
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
    if etype == "m.room.tombstone" and event.get("state_key") == "":
        content = event.get("content")
        replacement = content.get("replacement_room") if isinstance(content, dict) else None
        if not isinstance(replacement, str) or not replacement.startswith("!"):
            return None  # a tombstone without a successor: nothing to follow
        return RoomUpgraded(
            room_id=_str(event, "room_id"),
            event_id=_str(event, "event_id"),
            sender=_str(event, "sender"),
            replacement_room=_str(content, "replacement_room"),
        )
    if etype == POLICY_EVENT and event.get("state_key") == "":
        content = event.get("content")
        return RoomPolicyChange(
            room_id=_str(event, "room_id"),
            event_id=_str(event, "event_id"),
            sender=_str(event, "sender"),
            content=content if isinstance(content, dict) else {},
        )
    return None


def _in_rooms(event: dict[str, Any], rooms: Collection[str]) -> bool:
    # Checked for type first: a list or object as room_id is unhashable, and a set lookup of it
    # would raise TypeError, not MalformedEvent, failing the whole transaction.
    room_id = event.get("room_id")
    return isinstance(room_id, str) and room_id in rooms


def _triage_message(
    event: dict[str, Any], bot_user_id: str, conversations: Collection[str]
) -> Message | None:
    content = event.get("content")
    body = content.get("body") if isinstance(content, dict) else None
    if not isinstance(body, str) or event.get("sender") == bot_user_id:
        return None
    if not _in_rooms(event, conversations) and not body.startswith(COMMAND_PREFIX):
        return None
    return Message(
        room_id=_str(event, "room_id"),
        event_id=_str(event, "event_id"),
        sender=_str(event, "sender"),
        body=body,
    )


def _triage_member(
    event: dict[str, Any],
    domain: str,
    bot_user_id: str,
    conversations: Collection[str],
    named_guests_too: bool = False,
) -> Observation | None:
    user_id = _str(event, "state_key")
    content = event.get("content")
    if not isinstance(content, dict):
        raise MalformedEvent("content is not an object")
    membership = content.get("membership")
    if not isinstance(membership, str):
        raise MalformedEvent("membership is not a string")
    if user_id == bot_user_id:
        return BotMembership(
            _str(event, "room_id"), _str(event, "event_id"), membership, _str(event, "sender")
        )
    if _in_rooms(event, conversations):
        return ConversationMember(
            _str(event, "room_id"), _str(event, "event_id"), user_id, membership
        )
    if membership not in ("join", "invite"):
        return None
    kind_guest = content.get("kind") == "guest"
    unsigned = event.get("unsigned")
    prev = unsigned.get("prev_content") if isinstance(unsigned, dict) else None
    prev_membership = prev.get("membership") if isinstance(prev, dict) else None
    # Another server's member renaming: no `kind` on it, but the join it renames may have said
    # guest (and a rename racing guardbot's kick can win the room's state back). Looked at.
    remote_rename = not user_id.endswith(":" + domain) and membership == prev_membership == "join"
    candidate = is_guest_candidate(user_id, domain, kind_guest, named_guests_too=named_guests_too)
    if not candidate and not remote_rename:
        return None
    return MemberChange(
        room_id=_str(event, "room_id"),
        user_id=user_id,
        event_id=_str(event, "event_id"),
        membership=membership,
        prev_membership=prev_membership if isinstance(prev_membership, str) else None,
        kind_guest=kind_guest,
        at=sent_at if isinstance(sent_at := event.get("origin_server_ts"), int) else None,
    )


def observation_key(obs: Observation) -> str:
    """Identifies an observation while it waits in the inbox: the same one twice is kept once."""
    match obs:
        case RoomListed():
            return f"listed|{obs.room_id}|{obs.listed_at}"
        case MemberFound():
            return f"found|{obs.room_id}|{obs.user_id}|{obs.event_id}"
        case HomeserverBack():
            return f"back|{obs.at}"
        case MembersChanged():
            return f"members|{obs.room_id}|{obs.polled_at}"
        case RecheckDue():
            return f"recheck|{obs.at}"
        case ReportDue():
            return f"report|{obs.at}"
        case RoomPublished():
            return f"published|{obs.room_id}|{obs.at}"
        case GuardbotOutside():
            return f"outside|{obs.room_id}|{obs.at}"
        case FormerGuestsFound():
            return f"former|{obs.room_id}|{obs.forbid_cause}"
        case ReminderDue():
            return f"reminder-due|{obs.user_id}|{obs.due_at}"
        case ReminderWent():
            return f"reminder-went|{obs.user_id}|{obs.n}|{obs.due_at}"
        case PasswordFound() | PasswordSet():
            return f"password|{obs.user_id}|{obs.at}"
        case GuestNamed():
            return f"named|{obs.user_id}|{obs.at}"
        case NamedGuestRegistered():
            return f"registered|{obs.user_id}|{obs.at}"
        case AccountIdle():
            return f"idle|{obs.user_id}|{obs.step}|{obs.idle_since}|{obs.suspended_at}"
        case AccountSuspended():
            return f"suspended|{obs.user_id}"
        case AccountEnded():
            return f"ended|{obs.user_id}"
    return obs.event_id


def describe(obs: Observation) -> str:
    """One line for the audit log: what happened. Never a message's text: in a named guest's
    DM it could be the password they meant to set."""
    match obs:
        case MemberChange():
            hint = ", kind: guest" if obs.kind_guest else ""
            return f"{obs.user_id} {obs.membership} ({obs.event_id}{hint})"
        case MemberFound():
            return f"{obs.user_id} found {obs.membership} by a sweep ({obs.event_id})"
        case RoomListed():
            return "room appeared in the public directory"
        case HomeserverBack():
            return "the homeserver answers again after an outage"
        case MembersChanged():
            return f"the directory counts {obs.joined_members} members now"
        case RecheckDue():
            return "the slow re-check of every listed room"
        case ReportDue():
            return "actions finished since the management room's last report"
        case RoomPublished():
            return "the room is being published in the directory"
        case GuardbotOutside():
            return "guardbot must act in the room and is not in it"
        case FormerGuestsFound():
            return f"{len(obs.user_ids)} upgraded former guests still marked as guests"
        case GuestAccessChange():
            return f"{obs.sender} set guest_access to {obs.guest_access} ({obs.event_id})"
        case BotMembership():
            return f"guardbot {obs.membership} ({obs.event_id})"
        case RoomUpgraded():
            return f"{obs.sender} upgraded the room to {obs.replacement_room} ({obs.event_id})"
        case Message():
            return f"a message from {obs.sender} ({obs.event_id})"
        case ReminderDue():
            return f"{obs.user_id}'s next reminder fell due"
        case ReminderWent():
            went = "went" if obs.delivered else "could not go"
            return f"reminder {obs.n} {went} to {obs.user_id}"
        case PasswordFound():
            gone = "the account is deactivated" if obs.deactivated else "they set their own"
            return f"{obs.user_id}'s derived password no longer works ({gone})"
        case PasswordSet():
            return f"{obs.user_id} set a password {obs.how}"
        case GuestNamed():
            return f"{obs.guest_id} became the named guest {obs.user_id}"
        case NamedGuestRegistered():
            return f"{obs.user_id} registered as a named guest"
        case AccountIdle():
            return f"{obs.user_id} is idle since {obs.idle_since}: {obs.step} is due"
        case AccountSuspended():
            return f"{obs.user_id} is suspended"
        case AccountEnded():
            return f"{obs.user_id} is deactivated"
    return type(obs).__name__
