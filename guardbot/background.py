"""Background loops, written once: a named task that runs a step, waits until the step's next
time or a wake-up, backs off when the step fails, and stops cleanly when cancelled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from guardbot.core.backoff import backoff

log = logging.getLogger(__name__)

# A step returns how long to wait (seconds) before it runs again; None: the loop's idle time.
Step = Callable[[], Awaitable[float | None]]


class Wakeup:
    """Ends a loop's wait early. `homeserver_back` also says why: the homeserver answers again
    after an outage, so what waited for it should go now."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._homeserver_back = False

    def set(self) -> None:
        self._event.set()

    def homeserver_back(self) -> None:
        self._homeserver_back = True
        self._event.set()

    def take_homeserver_back(self) -> bool:
        """True once after each homeserver_back()."""
        back, self._homeserver_back = self._homeserver_back, False
        return back

    def clear(self) -> None:
        self._event.clear()

    async def wait(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), timeout=timeout)
        except TimeoutError:
            pass


async def run_loop(
    name: str,
    step: Step,
    wakeup: Wakeup | None = None,
    *,
    idle: float = 5.0,
    max_backoff: float = 60.0,
    expected: tuple[type[Exception], ...] = (),
) -> None:
    """Run `step` for ever. A failure waits 1 s, doubling up to `max_backoff`; an `expected`
    one (e.g. the homeserver being down) is one warning line, anything else a traceback."""
    wakeup = wakeup or Wakeup()
    failures = 0
    while True:
        wakeup.clear()
        try:
            delay = await step()
            failures = 0
        except expected as e:
            delay, failures = backoff(failures, 1.0, max_backoff), failures + 1
            log.warning("%s: %s; retrying in %.0fs", name, e, delay)
        except Exception:
            delay, failures = backoff(failures, 1.0, max_backoff), failures + 1
            log.exception("%s failed; retrying in %.0fs", name, delay)
        await wakeup.wait(idle if delay is None else max(0.0, delay))


def start(
    name: str,
    step: Step,
    wakeup: Wakeup | None = None,
    *,
    idle: float = 5.0,
    max_backoff: float = 60.0,
    expected: tuple[type[Exception], ...] = (),
) -> asyncio.Task[None]:
    """run_loop as a named task."""
    loop = run_loop(name, step, wakeup, idle=idle, max_backoff=max_backoff, expected=expected)
    return asyncio.create_task(loop, name=name)
