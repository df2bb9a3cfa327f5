"""`!guardbot …` commands from room admins, in their own rooms. Answers are notices.

The policy command does not change anything itself: it writes the room's policy state event,
so the change is replicated, visible and audited by the homeserver like any room setting, and
then takes effect the same way as if a room admin had sent that event.
"""

from __future__ import annotations

from dataclasses import dataclass

from guardbot.commands.parsing import Command, answer, parse
from guardbot.core import policy
from guardbot.core.actions import SetRoomPolicy
from guardbot.core.decision import NOTHING, Decision
from guardbot.core.observations import COMMAND_PREFIX, POLICY_EVENT, ConversationMember, Message
from guardbot.core.policy import Policy, RoomFacts, ServerPolicy
from guardbot.core.power import RoomPower
from guardbot.db import AuditStore
from guardbot.guard.facts import RoomFactSource
from guardbot.matrix.client import Homeserver

ROOM_HELP = [
    "!guardbot help — this text",
    "!guardbot status — what applies in this room, and why",
    "!guardbot policy forbid|kick|off [reason] — choose what guardbot does with guests here"
    " while the room is listed in the public directory",
]


@dataclass(frozen=True)
class RoomCommandFacts:
    command: Command
    room: RoomFacts | None = None
    power: RoomPower | None = None
    removed: int = 0  # guests removed here so far


class RoomCommands:
    def __init__(
        self,
        *,
        bot_user_id: str,
        management_room: str,
        server: ServerPolicy,
        rooms: RoomFactSource,
        hs: Homeserver,
        audit: AuditStore,
    ) -> None:
        self.bot = bot_user_id
        self.management_room = management_room
        self.server = server
        self.rooms = rooms
        self.hs = hs
        self.audit = audit

    async def gather(self, obs: Message | ConversationMember) -> RoomCommandFacts | None:
        if not isinstance(obs, Message) or obs.room_id == self.management_room:
            return None  # the management room has commands of its own
        command = parse(obs.body, prefix_required=True)
        if command is None:
            return None
        match command.name:
            case "status":
                return RoomCommandFacts(
                    command,
                    room=await self.rooms.facts(obs.room_id),
                    power=await self.hs.room_power(obs.room_id),
                    removed=await self.audit.count_done("Kick", room_id=obs.room_id),
                )
            case "policy":
                return RoomCommandFacts(command, power=await self.hs.room_power(obs.room_id))
        return RoomCommandFacts(command)

    def decide(
        self, msg: Message | ConversationMember, facts: RoomCommandFacts, now: int
    ) -> Decision:
        if not isinstance(msg, Message):
            return NOTHING
        match facts.command.name:
            case "help":
                return answer(msg.room_id, ["guardbot commands:", *ROOM_HELP], msg.event_id)
            case "status" if facts.room and facts.power:
                lines = self.status(facts.room, facts.power, facts.removed)
                return answer(msg.room_id, lines, msg.event_id)
            case "policy" if facts.power:
                return self.set_policy(msg, facts.command, facts.power)
        reply = f"Unknown command {facts.command.name!r}. Try {COMMAND_PREFIX} help"
        return answer(msg.room_id, [reply], msg.event_id)

    def status(self, room: RoomFacts, power: RoomPower, removed: int) -> list[str]:
        missing = power.missing_for_bot(self.bot, room.policy is Policy.FORBID)
        reason = f", reason: {room.reason}" if room.reason else ""
        if not room.listed:
            applies = "nothing: guests may join rooms that are not listed"
        elif room.policy is Policy.OFF:
            applies = "nothing: the policy is off"
        else:
            applies = f"{room.policy} guests"
        return [
            "guardbot status for this room",
            f"• listed in the public room directory: {'yes' if room.listed else 'no'}",
            f"• policy: {room.policy}, from {room.source_text}{reason}",
            f"• what guardbot does here now: {applies}",
            f"• dry-run: {'on (decides and reports, never acts)' if room.dry_run else 'off'}",
            f"• guests removed here: {removed}",
            "• guardbot has the power it needs"
            if not missing
            else f"• guardbot is missing: {', '.join(missing)}",
        ]

    def set_policy(self, msg: Message, command: Command, power: RoomPower) -> Decision:
        if not command.args or command.args[0] not in Policy.values():
            usage = f"Usage: {COMMAND_PREFIX} policy forbid|kick|off [reason]"
            return answer(msg.room_id, [usage], msg.event_id)
        choice = command.args[0]
        reason = command.rest[len(choice) :].strip()
        if not power.may_send_state(msg.sender, POLICY_EVENT):
            need = power.needed_for_state(POLICY_EVENT)
            reply = f"You need power level {need} to change guardbot's policy in this room."
            return answer(msg.room_id, [reply], msg.event_id)
        refusal = policy.refuse_choice(choice, self.server.room_admins_may)
        if refusal:
            return answer(msg.room_id, [refusal[0].upper() + refusal[1:] + "."], msg.event_id)
        if not power.may_send_state(self.bot, POLICY_EVENT):
            need = power.needed_for_state(POLICY_EVENT)
            reply = (
                f"guardbot needs power level {need} to write the policy event. Give it that, or"
                f" send the state event {POLICY_EVENT} yourself: "
                f'{{"listed_rooms": "{choice}", "reason": "…"}}'
            )
            return answer(msg.room_id, [reply], msg.event_id)
        content = {"listed_rooms": choice, "set_by": msg.sender}
        if reason:
            content["reason"] = reason
        return Decision(actions=(SetRoomPolicy(msg.room_id, content, cause=msg.event_id),))
