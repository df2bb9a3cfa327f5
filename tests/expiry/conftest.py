"""The expiry tests' fixtures: guardbot with expiry on, on the test's database and the
scripted homeserver."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from devtools.guard_loop import GuardLoop


@pytest.fixture
def expiring(
    guard_on_fake: Callable[..., Awaitable[GuardLoop]],
) -> Callable[..., Awaitable[GuardLoop]]:
    """`await expiring(**config)`: guardbot with expiry on (the example's durations: guests
    30 days, named guests 90, suspended 30) and these keys over it."""

    async def make(**config: object) -> GuardLoop:
        return await guard_on_fake(config={"expiry.enabled": True, **config})

    return make
