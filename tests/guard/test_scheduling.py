"""The executor's scheduling (guardbot/guard/scheduling.py): pure, so tested without a
homeserver or a database."""

from __future__ import annotations

from guardbot.core.actions import ForbidGuestAccess, JoinRoom, Kick, Remind, Sweep
from guardbot.db import QueuedAction
from guardbot.guard.scheduling import RATE_LIMIT_CAUTION_MS, RateLimits, batches, lanes

ROOM, OTHER = "!a:example.org", "!b:example.org"


def queued(*actions: object) -> list[QueuedAction]:
    return [QueuedAction(i, a, 0) for i, a in enumerate(actions)]  # type: ignore[arg-type]


def kick(user: str, room: str = ROOM) -> Kick:
    return Kick(room, user, "no guests", cause=f"$join-{user}")


def ids(groups: list[list[QueuedAction]]) -> list[list[int]]:
    return [[q.id for q in group] for group in groups]


def test_lanes_are_rooms_and_people_each_in_queue_order() -> None:
    items = queued(
        kick("@1:x", ROOM),
        Remind("@ann:x", 1, 0, cause="5"),
        kick("@2:x", OTHER),
        ForbidGuestAccess(ROOM, cause="$e"),
        Remind("@ann:x", 2, 0, cause="5"),
    )
    assert ids(lanes(items)) == [[0, 3], [1, 4], [2]]


def test_kicks_of_different_users_go_together_and_forbid_stays_first() -> None:
    items = queued(
        ForbidGuestAccess(ROOM, cause="$e"),
        kick("@1:x"),
        kick("@2:x"),
        kick("@1:x"),  # the same user again: the next batch
        Sweep(ROOM, cause="s"),
        kick("@3:x"),
    )
    assert ids(batches(items)) == [[0], [1, 2], [3], [4], [5]]


def test_a_rate_limit_holds_its_kind_then_lets_one_probe_then_all() -> None:
    limits = RateLimits()
    room_a = queued(kick("@1:x"), kick("@2:x"))
    room_b = [QueuedAction(9, kick("@3:x", OTHER), 0)]
    reminders = [QueuedAction(7, Remind("@ann:x", 1, 0, cause="5"), 0)]
    limits.limited("Kick", until=1000)
    assert limits.holds("Kick", 999) and not limits.holds("Remind", 999)
    # Waiting: no kick anywhere; another kind goes on.
    assert ids(limits.runs([room_a, room_b, reminders], now=500)) == [[7]]
    assert limits.next_free_at() == 1000
    # The wait is over but the limit may not have refilled: one kick per pass.
    assert ids(limits.runs([room_a, room_b], now=1000)) == [[0]]
    # Long after: all of them.
    later = 1000 + RATE_LIMIT_CAUTION_MS
    assert ids(limits.runs([room_a, room_b], now=later)) == [[0, 1], [9]]
    assert limits.next_free_at() is None


def test_a_later_429_never_shortens_the_wait() -> None:
    limits = RateLimits()
    limits.limited("Kick", until=5000)
    limits.limited("Kick", until=2000)
    assert limits.until["Kick"] == 5000


def test_kicks_of_different_users_batch_and_everything_else_keeps_its_place() -> None:
    forbid, sweep = ForbidGuestAccess(ROOM, "$f"), Sweep(ROOM, "$s")
    pairs = (("@a:x", "1"), ("@b:x", "2"), ("@a:x", "3"), ("@c:x", "4"))
    a, b, a_again, c = (Kick(ROOM, user, "r", cause) for user, cause in pairs)
    join = JoinRoom(ROOM, "$j")
    items = [QueuedAction(i, x, 0) for i, x in enumerate([forbid, a, b, a_again, sweep, c, join])]
    shape = [[q.action for q in batch] for batch in batches(items)]
    assert shape == [[forbid], [a, b], [a_again], [sweep], [c], [join]]
