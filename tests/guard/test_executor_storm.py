"""The executor (guard/executor.py) in a storm in one room: kicks of different users go out
together (bounded per room), not one write latency after another, and still each guest once,
and the door closed before the first kick. The scripted homeserver is slow here (a worker's
replication lag, on cue)."""

from __future__ import annotations

from devtools.guard_loop import guard_loop
from guardbot import db
from guardbot.core.actions import ForbidGuestAccess, Kick
from guardbot.core.clock import Clock
from guardbot.core.policy import Policy
from guardbot.guard.executor import PER_ROOM
from tests.support.fake_homeserver import FakeHomeserver
from tests.support.queries import action_history

ROOM = "!storm:example.org"
GUESTS = [f"@{n}:example.org" for n in range(1, 11)]


async def test_a_storm_in_one_room_is_cleared_in_parallel_each_guest_once(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    room = fake_hs.room(ROOM)
    for user in GUESTS:
        fake_hs.user(user, guest=True)
        room.member(user, kind="guest")
    for write in ("kick", "send_state m.room.guest_access"):
        fake_hs.slow(write, 0.2)
    guard = await guard_loop(database, fake_hs.url, listed=[ROOM], policy=Policy.FORBID)
    now = Clock().now_ms()
    actions = [ForbidGuestAccess(ROOM, "$first")]
    actions += [Kick(ROOM, user, "no guests", f"$join{i}") for i, user in enumerate(GUESTS)]
    actions += [Kick(ROOM, GUESTS[0], "no guests", "$rejoin")]  # the same guest, decided twice
    await guard.actions.add(actions, now)

    try:
        while await guard.executor.run_once():
            pass
    finally:
        await guard.hs.close()

    kicks = fake_hs.called("kick")
    # Each once: the second decision about the first guest found them gone.
    assert sorted(c.body["user_id"] for c in kicks) == sorted(GUESTS)
    (closed,) = fake_hs.called("send_state m.room.guest_access")
    assert closed.body == {"guest_access": "forbidden"}
    assert closed.answered < min(c.arrived for c in kicks)  # the door closed before any kick
    assert 1 < fake_hs.most_at_once("kick") <= PER_ROOM
    history = await action_history(guard.actions.db)
    assert {h["state"] for h in history} == {"done", "skipped"}
