"""Saying something to guardbot in a test: a message through the inbox and the evaluator, as
intake hands it over, and what guardbot queued in answer."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from devtools.guard_loop import GuardLoop
from guardbot.core.actions import Action, Notice
from guardbot.core.clock import Clock
from guardbot.core.observations import Message

_event_ids = itertools.count(1)


@dataclass
class Said:
    """What guardbot queued for one message: its answer's text, and the other actions."""

    answer: str
    actions: list[Action]


async def say(guard: GuardLoop, room_id: str, body: str, sender: str) -> Said:
    event_id = f"$said{next(_event_ids)}"
    now = Clock().now_ms()
    await guard.inbox.add([Message(room_id, event_id, sender, body)], now)
    await guard.evaluator.run_once()
    due = await guard.actions.due(now + 86_400_000)  # whatever was queued since, not yet run
    queued = [q.action for q in due if q.action.cause == event_id]
    answers = [a.text for a in queued if isinstance(a, Notice)]
    return Said("\n".join(answers), [a for a in queued if not isinstance(a, Notice)])
