"""guardbot's clock (guardbot/core/clock.py): wall-clock milliseconds for stored times, and a
reading that never goes back for durations."""

from __future__ import annotations

import time

from guardbot.core.clock import Clock


def test_now_is_the_wall_clock_in_milliseconds() -> None:
    before = int(time.time() * 1000)
    now = Clock().now_ms()
    after = int(time.time() * 1000)
    assert before <= now <= after


def test_the_steady_reading_never_goes_back() -> None:
    clock = Clock()
    readings = [clock.monotonic() for _ in range(1000)]
    assert readings == sorted(readings)
