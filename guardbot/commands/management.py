"""The management room: server admins ask guardbot about its state and steer it; guardbot
reports what it did there, batched so that a join storm is one message, not hundreds."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from guardbot.commands.room import Command, notice, parse
from guardbot.config import Config
from guardbot.core import policy
from guardbot.core.clock import now_ms
from guardbot.core.observations import Message
from guardbot.core.policy import Action, Verdict
from guardbot.db import ActionStore, AuditStore, InboxStore
from guardbot.db.queue import DRY_RUN, FAILED
from guardbot.db.room_settings import GLOBAL
from guardbot.guard.directory import Directory
from guardbot.guard.facts import Rooms
from guardbot.guard.guests import GuestOracle
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger("guardbot.commands.management")

HELP = [
    "Management commands (a leading !guardbot is optional here):",
    "• status — listed rooms, guests removed today, queued and failed actions, admin rights",
    "• rooms — the listed rooms and what applies in each",
    "• sweep <room> — apply a listed room's policy to everyone in it now",
    "• explain <user> <room> — why guardbot did or did not act",
    "• dryrun on|off [room] — decide and report but never act, everywhere or in one room",
    "• pwlu list | pwlu forget <user> — named guests guardbot reminds to set a password",
]
PwluCommand = Callable[[Message, Command], Awaitable[list[str]]]


class Management:
    def __init__(
        self,
        config: Config,
        hs: Homeserver,
        rooms: Rooms,
        directory: Directory,
        guests: GuestOracle,
        actions: ActionStore,
        inbox: InboxStore,
        audit: AuditStore,
    ) -> None:
        self.config = config
        self.room_id: str = config["management_room"]
        self.hs = hs
        self.rooms = rooms
        self.directory = directory
        self.guests = guests
        self.actions = actions
        self.inbox = inbox
        self.audit = audit
        self.pwlu_command: PwluCommand | None = None  # set when PWLU support is on
        self._pending: list[str] = []

    async def handle(self, msg: Message) -> list[Action]:
        if not self.room_id or msg.room_id != self.room_id:
            return []
        command = parse(msg.body, prefix_required=False)
        if command is None:
            return []
        lines = await self._answer(msg, command)
        return [notice(msg.room_id, lines, msg.event_id)] if lines else []

    async def _answer(self, msg: Message, command: Command) -> list[str]:
        args = command.args
        match command.name, len(args):
            case "help", _:
                return HELP
            case "status", _:
                return await self.status()
            case "rooms", _:
                return await self.list_rooms()
            case "sweep", 1:
                return await self.sweep(await self._room(args[0]), msg)
            case "explain", 2:
                return await self.explain(args[0], await self._room(args[1]))
            case "dryrun", 1 | 2 if args[0] in ("on", "off"):
                room = await self._room(args[1]) if len(args) == 2 else GLOBAL
                await self.rooms.set_dry_run(room, args[0] == "on", msg.sender)
                where = f"in {room}" if room else "everywhere (rooms set one by one keep theirs)"
                return [f"Dry-run is now {args[0]} {where}."]
            case "pwlu", _ if self.pwlu_command is not None:
                return await self.pwlu_command(msg, command)
            case "pwlu", _:
                return ["PWLU support is not enabled on this guardbot."]
        return [f"Unknown or incomplete command {msg.body.strip()!r}; try help"]

    async def _room(self, room: str) -> str:
        """A room ID, or an alias resolved to one."""
        if room.startswith("#"):
            try:
                return await self.hs.resolve_alias(room)
            except HomeserverError:
                return room  # the answers below then say the room is unknown
        return room

    async def status(self) -> list[str]:
        midnight = int(time.time() // 86400 * 86400 * 1000)
        poll = self.directory.last_poll_at
        poll_text = (
            f"{time.time() - poll:.0f} s ago, took {self.directory.last_poll_seconds:.2f} s"
            if poll is not None and self.directory.last_poll_seconds is not None
            else "not yet"
        )
        return [
            "guardbot status",
            f"• listed rooms: {len(self.directory.listed)}",
            f"• guests removed today (UTC): {await self.audit.count_done('Kick', since=midnight)}",
            f"• actions waiting: {await self.actions.pending()}, failed for good:"
            f" {await self.actions.count(FAILED)}, dry-run: {await self.actions.count(DRY_RUN)}",
            f"• events waiting to be evaluated: {await self.inbox.size()}",
            f"• last directory poll: {poll_text}",
            "• server admin rights: "
            + ("yes" if self.guests.admin else "NO — guest checks fall back to kind: guest"),
            f"• dry-run everywhere: {'on' if self.rooms.dry_run(GLOBAL) else 'off'}",
        ]

    async def list_rooms(self, limit: int = 50) -> list[str]:
        listed = sorted(self.directory.listed)
        more = f", the first {limit} here" if len(listed) > limit else ""
        lines = [f"Listed rooms ({len(listed)}{more}):"]
        for room_id in listed[:limit]:
            choice, _, source = self.rooms.policy(room_id)
            dry = ", dry-run" if self.rooms.dry_run(room_id) else ""
            lines.append(f"• {room_id}: {choice} (from {source}){dry}")
        return lines

    async def sweep(self, room_id: str, msg: Message) -> list[str]:
        facts = await self.rooms.facts(room_id)
        if not policy.enforces(facts):
            why = "not listed" if not facts.listed else "under the policy off"
            return [f"{room_id} is {why}: there is nothing to sweep."]
        queued = await self.actions.add(policy.close_and_sweep(facts, cause=msg.event_id), now_ms())
        return [f"Sweeping {room_id} ({facts.policy}); {queued} actions queued."]

    async def explain(self, user_id: str, room_id: str) -> list[str]:
        facts = await self.rooms.facts(room_id)
        try:
            member = await self.hs.state_event(room_id, "m.room.member", user_id)
        except HomeserverError as e:
            member, note = None, f" (guardbot cannot see the room: {e.error})"
        else:
            note = ""
        membership = member.get("membership") if member else None
        kind_guest = bool(member and member.get("kind") == "guest")
        verdict = await self.guests.verdict(
            user_id, kind_guest=kind_guest, new_join=membership == "join", fresh=True
        )
        try:
            missing = (await self.hs.room_power(room_id)).missing_for_bot(
                self.config.bot_user_id, facts.policy is policy.Policy.FORBID
            )
        except HomeserverError:
            missing = ["to be in the room"]
        why_not = policy.confirm_kick(facts, membership, verdict)
        if why_not is None and facts.dry_run:
            why_not = "dry-run is on for this room"
        if why_not is None and missing:
            why_not = f"guardbot is missing {', '.join(missing)}"
        lines = [
            f"{user_id} in {room_id}",
            f"• membership: {membership or 'none'}{note}",
            f"• guest: {verdict.value}"
            + ("" if verdict is not Verdict.UNKNOWN else " (no admin rights, no kind: guest)"),
            f"• room listed: {'yes' if facts.listed else 'no'}",
            f"• policy: {facts.policy} (from {facts.policy_source})",
            f"• dry-run: {'on' if facts.dry_run else 'off'}",
            f"• guardbot's power: {'enough' if not missing else 'missing ' + ', '.join(missing)}",
            "• verdict: guardbot removes them" if why_not is None else f"• verdict: no — {why_not}",
        ]
        history = await self.audit.find(room_id=room_id, user_id=user_id)
        lines += [f"• {e.what} at {_when(e.at)}: {e.result}" for e in history[-5:]]
        return lines

    # -- batched reports -------------------------------------------------------------------
    def note(self, action: Action, state: str, outcome: str) -> None:
        """Executor listener: remember what was done, for the next batched report."""
        if self.room_id and isinstance(action, policy.ENFORCING) and state in ("done", DRY_RUN):
            self._pending.append(f"• {action.room_id}: {outcome}")

    async def report_loop(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            if not self._pending:
                continue
            batch, self._pending = self._pending, []
            shown = batch[:20] + ([f"• … and {len(batch) - 20} more"] if len(batch) > 20 else [])
            message = notice(self.room_id, [f"guardbot acted {len(batch)} times:", *shown], "")
            try:
                txn_id = f"report-{time.time_ns()}"
                await self.hs.send_message(self.room_id, message.text, message.html, txn_id)
            except HomeserverError as e:
                log.warning("Could not report to the management room: %s", e)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))
