"""`!guardbot …` commands from room admins, in their own rooms. Answers are notices.

The policy command does not change anything itself: it writes the room's policy state event,
so the change is replicated, visible and audited by the homeserver like any room setting, and
then takes effect the same way as if a room admin had sent that event.
"""

from __future__ import annotations

import html
import shlex
from dataclasses import dataclass

from guardbot.config import Config
from guardbot.core.observations import COMMAND_PREFIX, POLICY_EVENT, Message
from guardbot.core.policy import Action, Notice, Policy, SetRoomPolicy
from guardbot.db import AuditStore
from guardbot.guard.facts import Rooms
from guardbot.matrix.client import Homeserver

ROOM_HELP = [
    "!guardbot help — this text",
    "!guardbot status — what applies in this room, and why",
    "!guardbot policy forbid|kick|off [reason] — choose what guardbot does with guests here"
    " while the room is listed in the public directory",
]


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    rest: str  # everything after the name, as typed


def parse(body: str, *, prefix_required: bool) -> Command | None:
    """`!guardbot policy kick no guests please` → Command("policy", ("kick", ...), "kick ...")."""
    text = body.strip()
    if text.startswith(COMMAND_PREFIX):
        text = text[len(COMMAND_PREFIX) :].strip()
    elif prefix_required:
        return None
    if not text:
        return Command("help", (), "")
    name, _, rest = text.partition(" ")
    try:
        args = tuple(shlex.split(rest))
    except ValueError:
        args = tuple(rest.split())
    return Command(name.lower(), args, rest.strip())


def notice(room_id: str, lines: list[str], cause: str) -> Notice:
    """Plain text, and HTML with the first line as a heading."""
    text = "\n".join(lines)
    head, *rest = [html.escape(line) for line in lines]
    items = "".join(f"<li>{line.lstrip('• ')}</li>" for line in rest)
    body = f"<p><strong>{head}</strong></p>" + (f"<ul>{items}</ul>" if items else "")
    return Notice(room_id, text, body, cause)


class RoomCommands:
    def __init__(self, config: Config, hs: Homeserver, rooms: Rooms, audit: AuditStore) -> None:
        self.config = config
        self.hs = hs
        self.rooms = rooms
        self.audit = audit
        self.bot = config.bot_user_id

    async def handle(self, msg: Message) -> list[Action]:
        if msg.room_id == self.config["management_room"]:
            return []  # the management room has commands of its own
        command = parse(msg.body, prefix_required=True)
        if command is None:
            return []
        match command.name:
            case "help":
                return [notice(msg.room_id, ["guardbot commands:", *ROOM_HELP], msg.event_id)]
            case "status":
                return [notice(msg.room_id, await self.status(msg.room_id), msg.event_id)]
            case "policy":
                return await self.set_policy(msg, command)
        answer = f"Unknown command {command.name!r}. Try {COMMAND_PREFIX} help"
        return [notice(msg.room_id, [answer], msg.event_id)]

    async def status(self, room_id: str) -> list[str]:
        facts = await self.rooms.facts(room_id)
        power = await self.hs.room_power(room_id)
        removed = await self.audit.count_done("Kick", room_id=room_id)
        missing = power.missing_for_bot(self.bot, facts.policy is Policy.FORBID)
        setting = self.rooms.policies.get(room_id)
        reason = f", reason: {setting.reason}" if setting and setting.reason else ""
        if not facts.listed:
            applies = "nothing: guests may join rooms that are not listed"
        elif facts.policy is Policy.OFF:
            applies = "nothing: the policy is off"
        else:
            applies = f"{facts.policy} guests"
        return [
            "guardbot status for this room",
            f"• listed in the public room directory: {'yes' if facts.listed else 'no'}",
            f"• policy: {facts.policy}, from {facts.policy_source}{reason}",
            f"• what guardbot does here now: {applies}",
            f"• dry-run: {'on (decides and reports, never acts)' if facts.dry_run else 'off'}",
            f"• guests removed here: {removed}",
            "• guardbot has the power it needs"
            if not missing
            else f"• guardbot is missing: {', '.join(missing)}",
        ]

    async def set_policy(self, msg: Message, command: Command) -> list[Action]:
        if not command.args or command.args[0] not in Policy.values():
            usage = f"Usage: {COMMAND_PREFIX} policy forbid|kick|off [reason]"
            return [notice(msg.room_id, [usage], msg.event_id)]
        choice = command.args[0]
        reason = command.rest[len(choice) :].strip()
        power = await self.hs.room_power(msg.room_id)
        if not power.may_send_state(msg.sender, POLICY_EVENT):
            need = power.needed_for_state(POLICY_EVENT)
            answer = f"You need power level {need} to change guardbot's policy in this room."
            return [notice(msg.room_id, [answer], msg.event_id)]
        allowed = list(self.config["policy.room_admins_may"])
        if choice not in allowed:
            answer = (
                f"The server admin does not let rooms choose {choice!r}"
                f" (allowed: {', '.join(allowed)})."
            )
            return [notice(msg.room_id, [answer], msg.event_id)]
        if not power.may_send_state(self.bot, POLICY_EVENT):
            need = power.needed_for_state(POLICY_EVENT)
            answer = (
                f"guardbot needs power level {need} to write the policy event. Give it that, or"
                f" send the state event {POLICY_EVENT} yourself: "
                f'{{"listed_rooms": "{choice}", "reason": "…"}}'
            )
            return [notice(msg.room_id, [answer], msg.event_id)]
        content = {"listed_rooms": choice, "set_by": msg.sender}
        if reason:
            content["reason"] = reason
        return [SetRoomPolicy(msg.room_id, content, cause=msg.event_id)]
