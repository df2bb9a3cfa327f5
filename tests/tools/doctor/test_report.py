"""The doctor's report (guardbot/tools/doctor/report.py): one line per check, the fix with
each failure, secrets redacted from every line, plain marks where ✓ cannot be shown, and an
exit code that says whether anything failed."""

from __future__ import annotations

import io

from guardbot.tools.doctor.report import Report


class Stream(io.StringIO):
    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


def test_each_check_is_one_line_and_failures_decide_the_exit_code() -> None:
    out = Stream("utf-8")
    report = Report(out, redact=lambda s: s.replace("hunter2", "***"))
    report.ok("database", "reachable")
    report.note("rooms", "none listed", "list one")
    report.skip("door", "not configured")
    assert report.summary() == 0
    report.fail("homeserver", "refused the token hunter2\n(401)", "run guardbot -g again")
    assert report.summary() == 1
    lines = out.getvalue().splitlines()
    assert lines[:3] == [
        "✓ database: reachable",
        "! rooms: none listed → list one",
        "– door: not checked: not configured",
    ]
    assert lines[4] == "✗ homeserver: refused the token *** (401) → fix: run guardbot -g again"
    assert lines[3] == "Everything checked is fine." and lines[5] == "1 problem(s) found."


def test_a_terminal_without_unicode_gets_plain_marks() -> None:
    out = Stream("ascii")
    report = Report(out)
    report.ok("database", "reachable")
    report.fail("door", "down", "start it")
    assert out.getvalue().splitlines() == [
        "[ok] database: reachable",
        "[FAIL] door: down -> fix: start it",
    ]
