"""guardbot's background loops (guardbot/background.py): a step runs again when it asks or
when woken; a failure never ends the loop (an expected one is one warning line, anything else
a traceback); cancelling stops it."""

from __future__ import annotations

import asyncio
import logging

import pytest

from guardbot import background
from guardbot.background import Wakeup


async def test_a_wakeup_ends_the_wait_and_says_when_the_homeserver_is_back() -> None:
    wakeup = Wakeup()
    assert not wakeup.take_homeserver_back()
    waiting = asyncio.create_task(wakeup.wait(3600))
    await asyncio.sleep(0)
    wakeup.homeserver_back()
    await asyncio.wait_for(waiting, timeout=60)  # a guard against a hang, not a measurement
    assert wakeup.take_homeserver_back()
    assert not wakeup.take_homeserver_back()  # once per homeserver_back()


async def test_failures_are_logged_and_the_loop_goes_on_until_cancelled(
    caplog: pytest.LogCaptureFixture,
) -> None:
    wakeup = Wakeup()
    results: list[str] = []
    outcomes = iter([ConnectionError("homeserver down"), RuntimeError("a bug"), None])

    async def step() -> float:
        outcome = next(outcomes, None)
        results.append(type(outcome).__name__)
        if outcome is not None:
            wakeup.set()  # do not sit out the backoff: go again at once
            raise outcome
        return 3600.0  # then nothing to do for an hour

    with caplog.at_level(logging.WARNING, logger="guardbot.background"):
        task = background.start("test loop", step, wakeup, expected=(ConnectionError,))
        while len(results) < 3:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert results == ["ConnectionError", "RuntimeError", "NoneType"]
    expected, bug = caplog.records[:2]
    assert expected.getMessage().startswith("test loop: homeserver down; retrying in 1s")
    assert expected.exc_info is None  # one line, no traceback
    assert bug.getMessage().startswith("test loop failed; retrying in 2s") and bug.exc_info
    assert task.get_name() == "test loop"
