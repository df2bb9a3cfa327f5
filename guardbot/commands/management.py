"""The management room: server admins ask guardbot about its state and steer it.

Each command gathers what its answer needs (reads), then a pure step writes the answer and
what it changes (a dry-run switch, a sweep, a named guest forgotten) as a decision.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from guardbot.commands.parsing import Command, answer, parse
from guardbot.core import policy
from guardbot.core.actions import ActionState
from guardbot.core.clock import Clock
from guardbot.core.decision import GLOBAL, NOTHING, AuditRecord, Decision, DryRunSwitch
from guardbot.core.expiry_rules import ExpiryRules, Upcoming
from guardbot.core.observations import ConversationMember, Message
from guardbot.core.policy import RoomFacts, Verdict
from guardbot.db import ActionStore, AuditStore, InboxStore
from guardbot.db.lease_store import LeaseStore
from guardbot.guard.directory import Directory
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver, HomeserverError

HELP = [
    "Management commands (a leading !guardbot is optional here):",
    "• status — listed rooms, guests removed today, queued and failed actions, admin rights",
    "• rooms — the listed rooms and what applies in each",
    "• sweep <room> — apply a listed room's policy to everyone in it now",
    "• explain <user> <room> — why guardbot did or did not act",
    "• explain <user> — a named guest's story: registered, each reminder, why they stopped",
    "• dryrun on|off [room] — decide and report but never act, everywhere or in one room",
    "• pwlu list | pwlu forget <user> — named guests guardbot reminds to set a password",
    "• expiry — whose account ends next, and when (expiry.* in the config)",
]
ROOMS_SHOWN = 50


class ExpiryPreview(Protocol):
    """`expiry` here, when expiry is on (guardbot/expiry/idle_accounts.py)."""

    rules: ExpiryRules

    async def upcoming(self, limit: int = 20) -> tuple[int, list[Upcoming]]: ...


class NamedGuestCommands(Protocol):
    """`pwlu …` here, when named guests are on (pwlu.admin_commands)."""

    async def gather(self, command: Command) -> Any: ...

    def decide(self, command: Command, facts: Any) -> tuple[list[str], Decision]: ...


@dataclass(frozen=True)
class Member:
    """One user in one room, for `explain`."""

    user_id: str
    membership: str | None
    verdict: Verdict
    missing: list[str]
    history: list[AuditRecord]
    note: str = ""


@dataclass(frozen=True)
class ManagementFacts:
    command: Command
    lines: list[str] = field(default_factory=list)  # an answer that only reports state
    room: RoomFacts | None = None
    room_id: str = ""
    member: Member | None = None
    named_guest: Any = None


class Management:
    def __init__(
        self,
        *,
        room_id: str,
        bot_user_id: str,
        hs: Homeserver,
        rooms: RoomFactSource,
        directory: Directory,
        guests: GuestOracle,
        actions: ActionStore,
        inbox: InboxStore,
        audit: AuditStore,
        lease: LeaseStore,
        named_guests: NamedGuestCommands | None,
        clock: Clock,
        expiry: ExpiryPreview | None = None,
    ) -> None:
        self.clock = clock
        self.lease = lease
        self.room_id = room_id
        self.bot = bot_user_id
        self.hs = hs
        self.rooms = rooms
        self.directory = directory
        self.guests = guests
        self.actions = actions
        self.inbox = inbox
        self.audit = audit
        self.named_guests = named_guests
        self.expiry = expiry

    # -- gather ----------------------------------------------------------------------------
    async def gather(self, obs: Message | ConversationMember) -> ManagementFacts | None:
        if not self.room_id or not isinstance(obs, Message) or obs.room_id != self.room_id:
            return None
        command = parse(obs.body, prefix_required=False)
        if command is None:
            return None
        args = command.args
        match command.name, len(args):
            case "status", _:
                return ManagementFacts(command, lines=await self.status())
            case "rooms", _:
                return ManagementFacts(command, lines=self.list_rooms())
            case "sweep", 1:
                room_id = await self._room(args[0])
                return ManagementFacts(command, room=await self.rooms.facts(room_id))
            case "explain", 2:
                room_id = await self._room(args[1])
                room = await self.rooms.facts(room_id)
                return ManagementFacts(command, room=room, member=await self._member(args[0], room))
            case "explain", 1 if self.named_guests is not None:
                return ManagementFacts(command, named_guest=await self.named_guests.gather(command))
            case "dryrun", 2 if args[0] in ("on", "off"):
                return ManagementFacts(command, room_id=await self._room(args[1]))
            case "pwlu", _ if self.named_guests is not None:
                return ManagementFacts(command, named_guest=await self.named_guests.gather(command))
            case "expiry", 0:
                return ManagementFacts(command, lines=await self.expiry_preview())
        return ManagementFacts(command)

    async def expiry_preview(self) -> list[str]:
        if self.expiry is None:
            return ["Expiry is off (expiry.enabled in the config): no account is ever ended."]
        rules = self.expiry.rules
        total, upcoming = await self.expiry.upcoming()
        dry = " (dry-run: decided and audited, nothing done)" if rules.dry_run else ""
        lines = [f"Expiry is on{dry}: {total} accounts it may end. Next steps:"]
        now = self.clock.now_ms()
        for step in upcoming:
            when = "due now" if step.at <= now else f"in {_duration(step.at - now)}"
            lines.append(f"• {step.user_id}: {step.step} {when}")
        if not upcoming:
            lines.append("• none")
        return lines

    async def _room(self, room: str) -> str:
        """A room ID, or an alias resolved to one."""
        if room.startswith("#"):
            try:
                return await self.hs.resolve_alias(room)
            except HomeserverError:
                return room  # the answers below then say the room is unknown
        return room

    async def status(self) -> list[str]:
        now = self.clock.now_ms()
        midnight = now // 86_400_000 * 86_400_000
        poll = self.directory.last_poll_at
        poll_text = (
            f"{(now - poll) / 1000:.0f} s ago, took {self.directory.last_poll_seconds:.2f} s"
            if poll is not None and self.directory.last_poll_seconds is not None
            else "not yet"
        )
        failed = await self.actions.count(ActionState.FAILED)
        held = await self.actions.count(ActionState.DRY_RUN)
        leader = await self.lease.current()
        # A term above 1 means another process (or an earlier run) led before this one.
        leader_text = f"{leader.holder}, term {leader.term}" if leader else "nobody (yet)"
        return [
            "guardbot status",
            f"• listed rooms: {len(self.directory.listed)}",
            f"• guests removed today (UTC): {await self.audit.count_done('Kick', since=midnight)}",
            f"• actions waiting: {await self.actions.pending()}, failed for good: {failed},"
            f" dry-run: {held}",
            f"• events waiting to be evaluated: {await self.inbox.size()}",
            f"• last directory poll: {poll_text}",
            "• server admin rights: "
            + ("yes" if self.guests.admin else "NO — guest checks fall back to kind: guest"),
            f"• dry-run everywhere: {'on' if self.rooms.dry_run_everywhere() else 'off'}",
            f"• acting: {leader_text}",
        ]

    def list_rooms(self) -> list[str]:
        listed = self.rooms.listed_rooms()
        more = f", the first {ROOMS_SHOWN} here" if len(listed) > ROOMS_SHOWN else ""
        lines = [f"Listed rooms ({len(listed)}{more}):"]
        for room in listed[:ROOMS_SHOWN]:
            dry = ", dry-run" if room.dry_run else ""
            free = ", guest-free (policy.guest_free_rooms)" if room.guest_free else ""
            lines.append(f"• {room.room_id}: {room.policy} (from {room.source_text}){dry}{free}")
        return lines

    async def _member(self, user_id: str, room: RoomFacts) -> Member:
        note = ""
        try:
            event = await self.hs.state_event(
                room.room_id, "m.room.member", user_id, format_event=True
            )
        except HomeserverError as e:
            event, note = None, f" (guardbot cannot see the room: {e.error})"
        content = event.get("content") if event else None
        membership = content.get("membership") if isinstance(content, dict) else None
        verdict = await self.guests.member_verdict(room.room_id, user_id, event, fresh=True)
        try:
            power = await self.hs.room_power(room.room_id)
            missing = power.missing_for_bot(self.bot, room.policy is policy.Policy.FORBID)
        except HomeserverError:
            missing = ["to be in the room"]
        history = await self.audit.find(room_id=room.room_id, user_id=user_id)
        return Member(user_id, membership, verdict, missing, history[-5:], note)

    # -- decide (pure) ---------------------------------------------------------------------
    def decide(
        self, msg: Message | ConversationMember, facts: ManagementFacts, now: int
    ) -> Decision:
        if not isinstance(msg, Message):
            return NOTHING
        command, args = facts.command, facts.command.args
        match command.name:
            case "help":
                return answer(msg.room_id, HELP, msg.event_id)
            case "status" | "rooms" | "expiry":
                return answer(msg.room_id, facts.lines, msg.event_id)
            case "sweep" if facts.room is not None:
                return self.sweep(msg, facts.room, now)
            case "explain" if facts.room is not None and facts.member is not None:
                return answer(msg.room_id, explain(facts.member, facts.room), msg.event_id)
            case "dryrun" if args and args[0] in ("on", "off") and len(args) <= 2:
                return self.dry_run(msg, args[0] == "on", facts.room_id or GLOBAL, now)
            case "explain" if self.named_guests is not None and facts.named_guest is not None:
                lines, decision = self.named_guests.decide(command, facts.named_guest)
                return answer(msg.room_id, lines, msg.event_id) + decision
            case "pwlu" if self.named_guests is not None:
                lines, decision = self.named_guests.decide(command, facts.named_guest)
                return answer(msg.room_id, lines, msg.event_id) + decision
            case "pwlu":
                return answer(
                    msg.room_id, ["PWLU support is not enabled on this guardbot."], msg.event_id
                )
        reply = f"Unknown or incomplete command {msg.body.strip()!r}; try help"
        return answer(msg.room_id, [reply], msg.event_id)

    def sweep(self, msg: Message, room: RoomFacts, now: int) -> Decision:
        if not policy.removes_guests(room):
            why = "not listed" if not room.listed else "under the policy off"
            return answer(
                msg.room_id, [f"{room.room_id} is {why}: there is nothing to sweep."], msg.event_id
            )
        actions = policy.close_and_sweep(room, cause=msg.event_id)
        audit = tuple(
            AuditRecord(
                now,
                msg.sender,
                f"decide {type(a).__name__}",
                room.room_id,
                None,
                f"sweep command ({msg.event_id})",
                "queued",
            )
            for a in actions
        )
        reply = f"Sweeping {room.room_id} ({room.policy}); {len(actions)} actions queued."
        return answer(msg.room_id, [reply], msg.event_id) + Decision(tuple(actions), audit)

    def dry_run(self, msg: Message, enabled: bool, room_id: str, now: int) -> Decision:
        switch = DryRunSwitch(room_id, enabled, msg.sender, now)
        audit = AuditRecord(
            now,
            msg.sender,
            "dryrun",
            room_id or None,
            None,
            f"dryrun command ({msg.event_id})",
            "on" if enabled else "off",
        )
        where = f"in {room_id}" if room_id else "everywhere (rooms set one by one keep theirs)"
        reply = f"Dry-run is now {'on' if enabled else 'off'} {where}."
        return answer(msg.room_id, [reply], msg.event_id) + Decision(
            audit=(audit,), records=(switch,)
        )


def explain(member: Member, room: RoomFacts) -> list[str]:
    why_not = policy.explain_kick(room, member.membership, member.verdict, member.missing)
    unknown = " (no admin rights, no kind: guest)" if member.verdict is Verdict.UNKNOWN else ""
    power = "enough" if not member.missing else "missing " + ", ".join(member.missing)
    lines = [
        f"{member.user_id} in {room.room_id}",
        f"• membership: {member.membership or 'none'}{member.note}",
        f"• guest: {member.verdict.value}{unknown}",
        f"• room listed: {'yes' if room.listed else 'no'}",
        f"• policy: {room.policy} (from {room.source_text})",
        f"• dry-run: {'on' if room.dry_run else 'off'}",
        f"• guardbot's power: {power}",
        "• verdict: guardbot removes them" if why_not is None else f"• verdict: no — {why_not}",
    ]
    return lines + [f"• {e.what} at {_when(e.at)}: {e.result}" for e in member.history]


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def _duration(ms: int) -> str:
    s = ms // 1000
    if s >= 86_400:
        return f"{s // 86_400}d {s % 86_400 // 3_600}h"
    if s >= 3_600:
        return f"{s // 3_600}h {s % 3_600 // 60}m"
    return f"{s // 60}m" if s >= 60 else f"{s}s"
