"""The management room's report of what guardbot did: decided from the actions finished since
the last report (read by the evaluator), sent as a queued notice, and the report's reach
recorded in the same transaction, so a crash neither loses a report nor sends one twice. One
message for a batch, so a join storm is one report, not hundreds."""

from __future__ import annotations

from dataclasses import dataclass

from guardbot.core.actions import notice
from guardbot.core.decision import NOTHING, Decision, Reported

SHOWN = 20


@dataclass(frozen=True)
class Finished:
    """An enforcing action that is done (or was held back by dry-run), not yet reported."""

    action_id: int
    done_at: int
    room_id: str
    outcome: str


def decide_report(room_id: str, finished: tuple[Finished, ...]) -> Decision:
    if not room_id or not finished:
        return NOTHING
    last = finished[-1]
    more = [f"• … and {len(finished) - SHOWN} more"] if len(finished) > SHOWN else []
    lines = [
        f"guardbot acted {len(finished)} times:",
        *(f"• {f.room_id}: {f.outcome}" for f in finished[:SHOWN]),
        *more,
    ]
    said = notice(room_id, lines, cause=f"report|{last.done_at}|{last.action_id}")
    return Decision(actions=(said,), records=(Reported(last.done_at, last.action_id),))
