"""The management room's report (guardbot/core/reporting.py, `decide_report`): what was done
since the last one, in one message, and how far it reached."""

from __future__ import annotations

from guardbot.core.actions import Notice
from guardbot.core.decision import NOTHING, Reported
from guardbot.core.reporting import SHOWN, Finished, decide_report

MGMT = "!mgmt:example.org"


def finished(n: int) -> tuple[Finished, ...]:
    return tuple(Finished(i, 1000 + i, f"!r{i}:example.org", f"removed @{i}:x") for i in range(n))


def test_what_was_done_is_one_notice_and_its_reach_is_recorded() -> None:
    decision = decide_report(MGMT, finished(2))
    (said,) = decision.actions
    assert isinstance(said, Notice) and said.room_id == MGMT
    assert said.text.splitlines() == [
        "guardbot acted 2 times:",
        "• !r0:example.org: removed @0:x",
        "• !r1:example.org: removed @1:x",
    ]
    assert decision.records == (Reported(1001, 1),)
    assert said.cause == "report|1001|1"  # the same report decided twice is sent once


def test_a_storm_is_one_report_that_shows_the_first_and_counts_the_rest() -> None:
    decision = decide_report(MGMT, finished(SHOWN + 5))
    lines = decision.actions[0].text.splitlines()
    assert lines[0] == f"guardbot acted {SHOWN + 5} times:"
    assert len(lines) == 1 + SHOWN + 1 and lines[-1] == "• … and 5 more"
    assert decision.records == (Reported(1000 + SHOWN + 4, SHOWN + 4),)


def test_no_report_without_a_room_or_without_news() -> None:
    assert decide_report("", finished(3)) == NOTHING
    assert decide_report(MGMT, ()) == NOTHING
