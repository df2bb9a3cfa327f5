"""What the executor may carry out now, and in which groups: pure, with the clock passed in.

Actions run in lanes (a room, or a person for a named guest's actions) side by side; within a
lane in the order decided, except that kicks of different users in a row go out together.
The homeserver's rate limits are on guardbot as one user, so a 429 holds back every action of
that kind, not only the one refused; after its wait, that kind goes one action per pass for a
while, so the limit can refill instead of meeting a burst again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from guardbot.core.actions import Kick, lane
from guardbot.db import QueuedAction

# After M_LIMIT_EXCEEDED, actions of that kind go out one at a time for this long after the
# wait the homeserver named.
RATE_LIMIT_CAUTION_MS = 30_000


def lanes(due: Iterable[QueuedAction]) -> list[list[QueuedAction]]:
    """Due actions by lane, each lane in queue order."""
    by_lane: dict[str, list[QueuedAction]] = defaultdict(list)
    for queued in due:
        by_lane[lane(queued.action)].append(queued)
    return list(by_lane.values())


def batches(items: Iterable[QueuedAction]) -> list[list[QueuedAction]]:
    """A lane's due actions in their order, as batches that may run together: consecutive
    kicks of distinct users (the same user twice would be kicked twice: each re-check would
    still see them in), and every other action alone, so forbid still goes before kick."""
    out: list[list[QueuedAction]] = []
    batch: list[QueuedAction] = []
    users: set[str] = set()
    for queued in items:
        action = queued.action
        if isinstance(action, Kick) and action.user_id not in users:
            batch.append(queued)
            users.add(action.user_id)
            continue
        if batch:
            out.append(batch)
            batch, users = [], set()
        if isinstance(action, Kick):
            batch, users = [queued], {action.user_id}
        else:
            out.append([queued])
    if batch:
        out.append(batch)
    return out


def kind(queued: QueuedAction) -> str:
    return type(queued.action).__name__


class RateLimits:
    """Action kind -> until when (ms) the homeserver asked to be left alone."""

    def __init__(self) -> None:
        self.until: dict[str, int] = {}

    def limited(self, kind: str, until: int) -> None:
        """A 429 for an action of this kind: every one of that kind waits until `until`."""
        self.until[kind] = max(self.until.get(kind, 0), until)

    def holds(self, kind: str, now: int) -> bool:
        """Must an action of this kind wait (met by another this very pass, say)?"""
        until = self.until.get(kind)
        return until is not None and now < until

    def runs(self, lanes: Iterable[list[QueuedAction]], now: int) -> list[list[QueuedAction]]:
        """What may go out now: nothing of a kind the homeserver is limiting, and while it may
        still be, one action of that kind per pass (the loop comes straight back for the
        next). A lane stops at its first held-back action, keeping its order."""
        probing: set[str] = set()
        out = []
        for items in lanes:
            run: list[QueuedAction] = []
            for queued in items:
                k = kind(queued)
                until = self.until.get(k)
                if until is not None and now >= until + RATE_LIMIT_CAUTION_MS:
                    del self.until[k]
                elif until is not None and (now < until or k in probing):
                    break
                elif until is not None:
                    probing.add(k)
                run.append(queued)
            if run:
                out.append(run)
        return out

    def next_free_at(self) -> int | None:
        """When the first wait ends (what is due but held back goes then)."""
        return min(self.until.values()) if self.until else None
