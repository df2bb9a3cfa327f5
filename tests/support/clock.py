"""A clock the test moves by hand, and a wake-up that counts, given to components in place of
guardbot's own."""

from __future__ import annotations

from guardbot.background import Wakeup
from guardbot.core.clock import Clock


class FakeClock(Clock):
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.ms = now_ms

    def now_ms(self) -> int:
        return self.ms

    def monotonic(self) -> float:
        return self.ms / 1000

    def advance(self, seconds: float) -> None:
        self.ms += int(seconds * 1000)


class CountingWakeup(Wakeup):
    """A loop's wake-up that counts how often it was set."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def set(self) -> None:
        self.count += 1
        super().set()
