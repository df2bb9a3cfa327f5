"""The one backoff rule (guardbot/core/backoff.py), for the executor, the loops and the
take-over."""

from __future__ import annotations

from guardbot.core.backoff import backoff


def test_backoff_doubles_from_the_first_wait_up_to_the_longest() -> None:
    assert [backoff(n, 2.0, 30.0) for n in range(6)] == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff(10_000, 1.0, 60.0) == 60.0  # no overflow after a long outage
