"""The policy: what guardbot should do, decided from an observation and the facts gathered for
it. Every rule exists here once; the evaluator (deciding), the executor (the re-check right
before acting), `explain` and the commands all call it. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from guardbot.core.actions import (
    ENFORCING,
    Action,
    ForbidGuestAccess,
    JoinRoom,
    Kick,
    Notice,
    SetRoomPolicy,
    ShieldFormerGuest,
    Sweep,
)
from guardbot.core.decision import (
    GLOBAL,
    NOTHING,
    AuditRecord,
    Decision,
    HomeserverAnswers,
    RoomClassified,
    RoomPolicySetting,
    RoomWoken,
    WatchDirectory,
)
from guardbot.core.observations import (
    POLICY_EVENT,
    BotMembership,
    FormerGuestsFound,
    GuardbotOutside,
    GuestAccessChange,
    HomeserverBack,
    MemberChange,
    MemberFound,
    MembersChanged,
    Observation,
    PowerChange,
    RecheckDue,
    ReportDue,
    RoomListed,
    RoomPolicyChange,
    RoomPublished,
    RoomUpgraded,
    describe,
)
from guardbot.core.reporting import Finished, decide_report


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


class PolicySource(StrEnum):
    """Who chose the policy that applies to a room, in the order they win."""

    SERVER_ROOM = "server_room"  # the server admin's per-room setting (policy.rooms)
    ROOM_ADMINS = "room_admins"  # the room's own policy state event
    SERVER_DEFAULT = "server_default"  # policy.listed_rooms


@dataclass(frozen=True)
class ServerPolicy:
    """The server admin's choices, from the config file."""

    default: Policy = Policy.FORBID
    rooms: Mapping[str, Policy] = field(default_factory=dict)
    room_admins_may: tuple[str, ...] = tuple(Policy.values())
    kick_reason: str = "Guests may not join rooms listed in the public room directory"
    restore_notice: str = "Guest access was turned back off: this room is listed"
    dry_run: bool = False
    auto_join: bool = False  # bot.auto_join_listed_rooms: join listed rooms by the admin API


@dataclass(frozen=True)
class RoomFacts:
    room_id: str
    listed: bool
    policy: Policy
    kick_reason: str
    restore_notice: str
    source: PolicySource = PolicySource.SERVER_DEFAULT
    set_by: str | None = None  # the room admin who chose it (ROOM_ADMINS)
    reason: str | None = None  # the room admins' reason, if they gave one
    dry_run: bool = False
    guest_free: bool = False  # policy.guest_free_rooms: treated as listed, never "off"

    @property
    def source_text(self) -> str:
        match self.source:
            case PolicySource.SERVER_ROOM:
                return "the server admin's per-room setting"
            case PolicySource.ROOM_ADMINS:
                return f"the room's admins ({self.set_by})"
        return "the server default"


def room_facts(
    server: ServerPolicy,
    room_id: str,
    listed: bool,
    setting: RoomPolicySetting | None,
    dry_runs: Mapping[str, bool],
    *,
    guest_free: bool = False,
) -> RoomFacts:
    """What applies to a room. The policy comes from, in order: the server admin's per-room
    setting, the room admins' policy event, the server default; a guest-free room's is never
    "off" (the server admin said so). Dry-run: the room's own switch, else the global one,
    else the config."""
    policy, source, set_by, reason = server.default, PolicySource.SERVER_DEFAULT, None, None
    if room_id in server.rooms:
        policy, source = Policy(server.rooms[room_id]), PolicySource.SERVER_ROOM
    elif setting is not None:
        policy, source = Policy(setting.policy), PolicySource.ROOM_ADMINS
        set_by, reason = setting.set_by, setting.reason
    if guest_free and policy is Policy.OFF:
        policy = server.default if server.default is not Policy.OFF else Policy.KICK
        source, set_by, reason = PolicySource.SERVER_ROOM, None, None
    dry_run = dry_runs.get(room_id, dry_runs.get(GLOBAL, server.dry_run))
    return RoomFacts(
        room_id=room_id,
        listed=listed,
        policy=policy,
        kick_reason=reason or server.kick_reason,
        restore_notice=server.restore_notice,
        source=source,
        set_by=set_by,
        reason=reason,
        dry_run=dry_run,
        guest_free=guest_free,
    )


@dataclass(frozen=True)
class Facts:
    """What the evaluator gathered for one observation (reads only) before deciding."""

    now: int
    bot_user_id: str
    room: RoomFacts | None = None
    # The directory look-up made for this observation, if the room was never classified.
    classified: RoomClassified | None = None
    verdict: Verdict = Verdict.UNKNOWN
    sender_may_set_policy: bool = False  # RoomPolicyChange
    inviter_is_admin: bool = False  # an invite to the management room
    management_room: str = ""
    dry_runs: Mapping[str, bool] = field(default_factory=dict)
    listed_rooms: tuple[RoomFacts, ...] = ()  # HomeserverBack, RecheckDue
    # guardbot joined: the room's own policy event, if it has one guardbot has not judged yet.
    # An upgrade, or guardbot's join of a replacement without a policy: what the predecessor's
    # admins had chosen.
    policy_event: RoomPolicyChange | None = None
    predecessor_policy: RoomPolicySetting | None = None
    finished: tuple[Finished, ...] = ()  # ReportDue: actions not yet in a report
    admin: bool = False  # GuardbotOutside: guardbot is a server admin now


# -- the rules ------------------------------------------------------------------------------
def removes_guests(room: RoomFacts) -> bool:
    """Guests are removed from this room (it is listed or guest-free, its policy not off)."""
    return (room.listed or room.guest_free) and room.policy is not Policy.OFF


def removable(membership: str | None) -> bool:
    """Only someone in the room or invited into it is removed."""
    return membership in ("join", "invite")


def close_and_sweep(room: RoomFacts, cause: str) -> list[Action]:
    """Apply the room's policy to everyone already in it."""
    if not removes_guests(room):
        return []
    sweep = Sweep(room.room_id, cause=cause)
    if room.policy is Policy.FORBID:
        return [ForbidGuestAccess(room.room_id, cause=cause), sweep]
    return [sweep]


def why_not_removed(room: RoomFacts, membership: str | None, verdict: Verdict) -> str | None:
    """The one rule of removal: None if this member is removed from this room, else why not.
    The decisions and the executor's re-check right before the kick both ask it, so they
    cannot drift apart."""
    if not room.listed and not room.guest_free:
        return "room is no longer listed"
    if room.policy is Policy.OFF:
        return "room policy is off"
    if not removable(membership):
        return f"user already gone ({membership or 'never joined'})"
    if verdict is not Verdict.GUEST:
        return f"user is not certainly a guest ({verdict.value})"
    return None


def decide_member(change: MemberChange, room: RoomFacts, verdict: Verdict) -> list[Action]:
    """A guest joined or was invited into a room."""
    if why_not_removed(room, change.membership, verdict) is not None:
        return []
    kick = Kick(
        room.room_id, change.user_id, room.kick_reason, cause=change.event_id, joined_at=change.at
    )
    if room.policy is Policy.FORBID:
        # Close the door first, so the next guest is refused by the homeserver itself.
        return [ForbidGuestAccess(room.room_id, cause=change.event_id), kick]
    return [kick]


def decide_found(found: MemberFound, room: RoomFacts, verdict: Verdict) -> list[Action]:
    """One member found while sweeping a room."""
    if why_not_removed(room, found.membership, verdict) is not None:
        return []
    return [Kick(room.room_id, found.user_id, room.kick_reason, cause=found.event_id)]


def decide_guest_access(
    change: GuestAccessChange, room: RoomFacts, bot_user_id: str
) -> list[Action]:
    """Someone opened a listed `forbid` room to guests: close it again and say why."""
    if not removes_guests(room) or room.policy is not Policy.FORBID:
        return []
    # Only "can_join" lets guests in; anything else (or nothing) the homeserver reads as forbidden.
    if change.guest_access != "can_join" or change.sender == bot_user_id:
        return []
    return [ForbidGuestAccess(room.room_id, cause=change.event_id, notice=room.restore_notice)]


def decide_invite(change: BotMembership, facts: Facts) -> Decision:
    """Any room may invite guardbot; the management room only a server admin."""
    if change.room_id == facts.management_room and not facts.inviter_is_admin:
        refused = AuditRecord(
            facts.now,
            change.sender,
            "invite",
            change.room_id,
            change.sender,
            f"invite to the management room ({change.event_id})",
            "refused: the inviter is not a server admin",
        )
        return Decision(audit=(refused,))
    return Decision(actions=(JoinRoom(change.room_id, cause=change.event_id),))


def decide_bot_membership(
    change: BotMembership, facts: Facts, room: RoomFacts, server: ServerPolicy
) -> Decision:
    """Once in a room: its own policy first (set in its initial state, or while guardbot was
    not there; an upgraded room's carried over), then a look at who is already there."""
    if change.membership != "join":
        return NOTHING
    decision = Decision(records=(RoomWoken(room.room_id),))
    if facts.policy_event is not None:
        ruled, room = rule_room_policy(facts.policy_event, facts, room, server)
        decision += ruled
    elif facts.predecessor_policy is not None:
        write, setting = carried_over(room.room_id, facts.predecessor_policy, facts.now)
        room = room_facts(server, room.room_id, room.listed, setting, facts.dry_runs)
        decision += Decision(actions=(write,), records=(setting,))
    # Caused by this join event, so a later re-join closes the room and sweeps it again.
    return decision + Decision(actions=tuple(close_and_sweep(room, cause=change.event_id)))


def decide_upgrade(upgrade: RoomUpgraded, facts: Facts) -> Decision:
    """A room guardbot is in was upgraded: follow it into the replacement (where Synapse
    moved the directory listing), with the policy its admins had chosen; guardbot's join
    there applies it to whoever is inside."""
    join = JoinRoom(upgrade.replacement_room, cause=upgrade.event_id)
    if facts.predecessor_policy is None:
        return Decision(actions=(join,))
    write, setting = carried_over(upgrade.replacement_room, facts.predecessor_policy, facts.now)
    return Decision(actions=(join, write), records=(setting,))


def sweep_all(listed_rooms: tuple[RoomFacts, ...], cause: str) -> list[Action]:
    """Whatever the event stream may have missed: sweep every listed room, once per cause
    (the homeserver back after an outage, the slow re-check)."""
    return [Sweep(room.room_id, cause=cause) for room in listed_rooms if removes_guests(room)]


def refuse_at_the_door(room: RoomFacts, verdict: Verdict) -> bool:
    """The homeserver asks before a join or an invite: a guest stays out of a listed room
    whose policy removes guests, without touching its guest_access. Dry-run refuses nobody."""
    return removes_guests(room) and verdict is Verdict.GUEST and not room.dry_run


# -- the re-checks right before acting ------------------------------------------------------
def confirm_forbid(room: RoomFacts) -> str | None:
    if not removes_guests(room) or room.policy is not Policy.FORBID:
        return "room no longer under the forbid policy"
    return None


def confirm_sweep(room: RoomFacts) -> str | None:
    if not removes_guests(room):
        return "room no longer listed or policy off"
    return None


def why_not_shielded(member: Mapping[str, Any] | None, verdict: Verdict) -> str | None:
    """Re-sending a member's event without `kind`: only while it still says guest (and joined)
    and the homeserver shows them to be no guest."""
    if not member or member.get("kind") != "guest" or member.get("membership") != "join":
        return "their member event no longer says guest"
    if verdict is not Verdict.NOT_GUEST:
        return "they are not shown to be a former guest"
    return None


def kick_landed(event: Mapping[str, Any] | None, *, bot: str, why: str, started_at: int) -> bool:
    """The member's current event is guardbot's kick with this reason, sent no earlier than
    the try began (the homeserver's clock: a minute's leeway): a kick that reached the
    homeserver before a crash cut its answer off."""
    if not isinstance(event, Mapping) or event.get("sender") != bot:
        return False
    content = event.get("content")
    if not isinstance(content, Mapping) or content.get("membership") != "leave":
        return False
    sent_at = event.get("origin_server_ts")
    recent = isinstance(sent_at, int) and sent_at >= started_at - 60_000
    return recent and content.get("reason") == why


def explain_kick(
    room: RoomFacts, membership: str | None, verdict: Verdict, missing: list[str]
) -> str | None:
    """For `explain`: None if guardbot removes this member now, else why not."""
    why_not = why_not_removed(room, membership, verdict)
    if why_not is None and room.dry_run:
        why_not = "dry-run is on for this room"
    if why_not is None and missing:
        why_not = f"guardbot is missing {', '.join(missing)}"
    return why_not


# -- room admins' choices -------------------------------------------------------------------
def refuse_choice(choice: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    """None if rooms may choose this policy, else why not."""
    if choice not in Policy.values():
        return f"listed_rooms must be one of {', '.join(Policy.values())}"
    if choice not in allowed:
        return (
            f"the server admin does not let rooms choose {choice!r} here"
            f" (allowed: {', '.join(allowed)})"
        )
    return None


@dataclass(frozen=True)
class PolicyRuling:
    """What becomes of a room admin's policy event: accepted (policy set) or why not."""

    policy: Policy | None
    reason: str | None
    set_by: str
    explanation: str


def judge_room_policy(
    change: RoomPolicyChange, sender_may: bool, allowed: tuple[str, ...], bot_user_id: str
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
    choice: Any = content.get("listed_rooms")
    refusal = refuse_choice(choice if isinstance(choice, str) else "", allowed)
    if refusal:
        return PolicyRuling(None, None, set_by, refusal)
    reason = content.get("reason")
    reason = reason.strip() if isinstance(reason, str) and reason.strip() else None
    return PolicyRuling(Policy(choice), reason, set_by, f"policy is now {choice}, set by {set_by}")


def rule_room_policy(
    change: RoomPolicyChange, facts: Facts, room: RoomFacts, server: ServerPolicy
) -> tuple[Decision, RoomFacts]:
    """A room's policy event judged: the answer in the room, its audit record and, if it
    stands, the setting recorded; and the room's facts as they are after it."""
    ruling = judge_room_policy(
        change, facts.sender_may_set_policy, server.room_admins_may, facts.bot_user_id
    )
    audit = AuditRecord(
        facts.now,
        ruling.set_by,
        "policy",
        change.room_id,
        ruling.set_by,
        f"{POLICY_EVENT} {change.content.get('listed_rooms')!r} ({change.event_id})",
        "refused" if ruling.policy is None else "accepted",
    )
    if ruling.policy is None:
        text = f"guardbot ignores this policy change: {ruling.explanation}."
        notice = Notice(change.room_id, text, text, cause=change.event_id)
        return Decision(actions=(notice,), audit=(audit,)), room
    setting = RoomPolicySetting(
        change.room_id,
        ruling.policy.value,
        ruling.reason,
        ruling.set_by,
        change.event_id,
        facts.now,
    )
    after = room_facts(server, room.room_id, room.listed, setting, facts.dry_runs)
    text = f"guardbot: {ruling.explanation}."
    if after.source is PolicySource.SERVER_ROOM:
        text += f" The server admin's setting for this room ({after.policy}) still applies."
    notice = Notice(change.room_id, text, text, cause=change.event_id)
    return Decision(actions=(notice,), audit=(audit,), records=(setting,)), after


def decide_room_policy(
    change: RoomPolicyChange, facts: Facts, room: RoomFacts, server: ServerPolicy
) -> Decision:
    ruled, after = rule_room_policy(change, facts, room, server)
    if not ruled.records:
        return ruled  # refused: nothing changes
    # Switching a listed room to an enforcing policy applies it to who is already there.
    return ruled + Decision(actions=tuple(close_and_sweep(after, cause=change.event_id)))


def carried_over(
    new_room: str, predecessor: RoomPolicySetting, now: int
) -> tuple[SetRoomPolicy, RoomPolicySetting]:
    """An upgraded room's replacement takes its predecessor's policy (Synapse copies no custom
    state): recorded at once, so nothing in the new room runs under the default meanwhile, and
    written into its state for the admin who chose it."""
    cause = f"upgrade from {predecessor.room_id}"
    content: dict[str, Any] = {"listed_rooms": predecessor.policy, "set_by": predecessor.set_by}
    if predecessor.reason:
        content["reason"] = predecessor.reason
    setting = RoomPolicySetting(
        new_room, predecessor.policy, predecessor.reason, predecessor.set_by, cause, now
    )
    return SetRoomPolicy(new_room, content, cause=cause), setting


# A forbid decided after shielding former guests: it closes the room without looking again.
AFTER_SHIELDING = "shielded|"


def decide_shields(obs: FormerGuestsFound, room: RoomFacts) -> Decision:
    """Upgraded former guests keep a member event saying `kind: guest`, and Synapse removes
    such members when guest access is forbidden: each is shielded (their event re-sent
    without it), then the room is closed, in that order (one room's actions keep theirs)."""
    if not removes_guests(room):
        return NOTHING
    shields = [ShieldFormerGuest(room.room_id, u, cause=obs.forbid_cause) for u in obs.user_ids]
    forbid = ForbidGuestAccess(
        room.room_id, cause=AFTER_SHIELDING + obs.forbid_cause, notice=obs.notice
    )
    return Decision(actions=(*shields, forbid))


def decide_outside(
    obs: GuardbotOutside, room: RoomFacts, admin: bool, server: ServerPolicy
) -> Decision:
    """guardbot must act in a room it is not in: with bot.auto_join_listed_rooms and admin
    rights it joins a listed room it guards (through the admin API if nobody invited it);
    otherwise it waits there to be invited, as the action's retry says."""
    if not (server.auto_join and admin and removes_guests(room)):
        return NOTHING
    # One join a minute per room, however many actions find guardbot outside meanwhile.
    minute = obs.at - obs.at % 60_000
    return Decision(actions=(JoinRoom(obs.room_id, cause=f"outside at {minute}"),))


# -- one observation, one decision ----------------------------------------------------------
def decide(obs: Observation, facts: Facts, server: ServerPolicy) -> Decision:
    """The guest policy's answer to one observation (conversations are decided by theirs)."""
    decision = _decide(obs, facts, server)
    if facts.classified is not None:
        learned = Decision(records=(facts.classified,))
        if facts.classified.listed and facts.room is not None:
            # Met before the poller saw it listed: its guests are handled now, not at the poll.
            listing = close_and_sweep(facts.room, cause=f"listed:{facts.classified.at}")
            learned += Decision(actions=tuple(listing))
        decision = learned + decision
    why = describe(obs)
    audit = tuple(
        AuditRecord(
            facts.now,
            "guardbot",
            f"decide {type(a).__name__}",
            a.room_id,
            getattr(a, "user_id", None),
            why,
            "queued",
        )
        for a in decision.actions
        if isinstance(a, (*ENFORCING, Sweep, JoinRoom, ShieldFormerGuest))
    )
    return decision + Decision(audit=audit)


def _decide(obs: Observation, facts: Facts, server: ServerPolicy) -> Decision:
    if isinstance(obs, PowerChange):
        return Decision(records=(RoomWoken(obs.room_id),))
    if isinstance(obs, HomeserverBack):
        # Lost events are looked for in every listed room, and what waited goes now.
        cause = f"homeserver back at {obs.at}"
        return Decision(
            actions=tuple(sweep_all(facts.listed_rooms, cause)),
            records=(HomeserverAnswers(obs.at),),
        )
    if isinstance(obs, RecheckDue):
        return Decision(actions=tuple(sweep_all(facts.listed_rooms, f"recheck at {obs.at}")))
    if isinstance(obs, ReportDue):
        return decide_report(facts.management_room, facts.finished)
    if isinstance(obs, RoomPublished):
        return Decision(records=(WatchDirectory(obs.room_id),))
    if isinstance(obs, BotMembership) and obs.membership == "invite":
        return decide_invite(obs, facts)
    if isinstance(obs, RoomUpgraded):
        return decide_upgrade(obs, facts)
    room = facts.room
    if room is None:
        return NOTHING
    match obs:
        case GuardbotOutside():
            return decide_outside(obs, room, facts.admin, server)
        case FormerGuestsFound():
            return decide_shields(obs, room)
        case MemberChange():
            return Decision(actions=tuple(decide_member(obs, room, facts.verdict)))
        case MemberFound():
            return Decision(actions=tuple(decide_found(obs, room, facts.verdict)))
        case GuestAccessChange():
            return Decision(actions=tuple(decide_guest_access(obs, room, facts.bot_user_id)))
        case RoomListed():
            return Decision(actions=tuple(close_and_sweep(room, cause=f"listed:{obs.listed_at}")))
        case MembersChanged():
            # Someone came or went unseen, perhaps: look at everyone (and close it again).
            cause = f"members:{obs.polled_at}"
            return Decision(actions=tuple(close_and_sweep(room, cause=cause)))
        case BotMembership():
            return decide_bot_membership(obs, facts, room, server)
        case RoomPolicyChange():
            return decide_room_policy(obs, facts, room, server)
    return NOTHING
