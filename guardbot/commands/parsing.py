"""Reading a command and writing an answer: shared by the room and management commands."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from guardbot.core.actions import notice
from guardbot.core.decision import Decision
from guardbot.core.observations import COMMAND_PREFIX


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


def answer(room_id: str, lines: list[str], cause: str) -> Decision:
    return Decision(actions=(notice(room_id, lines, cause),))
