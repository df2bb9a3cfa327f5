"""Time, injected: components get a Clock so that tests can hand them one they control."""

from __future__ import annotations

import time

_STEADY = getattr(time, "CLOCK_BOOTTIME", time.CLOCK_MONOTONIC)


class Clock:
    """Wall-clock milliseconds (the unit of every stored timestamp) and a monotonic reading
    for durations and cache ages."""

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def monotonic(self) -> float:
        # Counting time suspended too (Linux): a leader's lease must not seem younger to a
        # process that slept through part of it.
        return time.clock_gettime(_STEADY)
