"""The management room's reports go the one path: a timer's observation, a decision from the
actions finished since the last report, a queued notice, and the report's reach recorded with
it, so a restart neither loses a report nor sends one twice."""

from __future__ import annotations

from devtools.guard_loop import guard_loop
from guardbot import db
from guardbot.commands.reports import Reports
from guardbot.core.actions import ActionState, Kick, Notice, Outcome
from guardbot.core.clock import Clock

MGMT, ROOM = "!management:example.org", "!listed:example.org"


async def test_what_was_done_is_reported_once(database: db.Database) -> None:
    clock = Clock()
    guard = await guard_loop(database, "http://127.0.0.1:1", management_room=MGMT, clock=clock)
    actions = guard.actions
    reports = Reports(MGMT, actions, guard.decisions.inbox, guard.inbox_wakeup, clock)
    assert await reports.step() > 0 and await guard.evaluator.run_once() == 0  # nothing done

    kicks = [Kick(ROOM, f"@{n}:example.org", "no guests", cause=f"$join{n}") for n in range(3)]
    await actions.add(kicks, clock.now_ms())
    for queued in await actions.due(clock.now_ms()):
        outcome = Outcome(ActionState.DONE, f"removed guest {queued.action.user_id} (join)")
        await actions.finish(queued.id, outcome, clock.now_ms())

    await reports.step()
    assert await guard.evaluator.run_once() == 1
    [queued] = [q for q in await actions.due(clock.now_ms()) if isinstance(q.action, Notice)]
    report = queued.action
    assert report.room_id == MGMT and report.text.startswith("guardbot acted 3 times:")
    assert all(k.user_id in report.text for k in kicks)

    # Told once: the next look finds nothing new, and the same observation twice (a timer
    # that fired again before the first was decided) queues nothing more.
    await reports.step()
    await guard.evaluator.run_once()
    notices = [q for q in await actions.due(clock.now_ms()) if isinstance(q.action, Notice)]
    assert notices == [queued]
    assert await actions.unreported() == []
