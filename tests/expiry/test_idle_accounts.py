"""The expiry pass (expiry/idle_accounts.py): every account through the admin API's list,
and for each whose next step is due an observation for the evaluator; nobody who has a
password of their own, no admin, no account used lately. Against the scripted homeserver, on
every supported database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from devtools.guard_loop import GuardLoop
from guardbot.core.clock import Clock
from guardbot.core.expiry_rules import ExpiryRules, Step
from guardbot.core.observations import AccountIdle
from tests.support.fake_homeserver import FakeHomeserver

Expiring = Callable[..., Awaitable[GuardLoop]]
DAY_MS = 86_400_000


async def idle_found(guard: GuardLoop) -> dict[str, str]:
    """What the pass put in the inbox: user -> the step due."""
    assert guard.parts.expiry is not None
    await guard.parts.expiry.idle.step()
    return {
        r.observation.user_id: r.observation.step
        for r in await guard.inbox.take()
        if isinstance(r.observation, AccountIdle)
    }


async def test_an_idle_guest_is_due_and_nobody_else(
    fake_hs: FakeHomeserver, expiring: Expiring
) -> None:
    now = Clock().now_ms()
    fake_hs.user("@1:example.org", guest=True, last_seen=now - 31 * DAY_MS)
    fake_hs.user("@2:example.org", guest=True, last_seen=now - 29 * DAY_MS)  # not yet
    fake_hs.user("@alice:example.org", last_seen=now - 400 * DAY_MS)  # has a password
    fake_hs.user("@3:example.org", guest=True, admin=True, last_seen=now - 400 * DAY_MS)
    fake_hs.user("@4:example.org", guest=True, deactivated=True, last_seen=0)
    guard = await expiring()
    assert await idle_found(guard) == {"@1:example.org": "deactivate"}


async def test_a_named_guest_with_no_device_left_is_due_as_soon_as_a_guest(
    fake_hs: FakeHomeserver, expiring: Expiring
) -> None:
    now = Clock().now_ms()
    guard = await expiring()
    for user, devices in (("@ann:example.org", 0), ("@bob:example.org", 2)):
        fake_hs.user(user, last_seen=now - 31 * DAY_MS, devices=devices)
        await guard.decisions.named_guests.confirm(user, "k1", now, now + DAY_MS)
    assert await idle_found(guard) == {"@ann:example.org": "suspend"}  # Bob: 90 days
    asked = [c.params["user"] for c in fake_hs.called("devices")]
    assert sorted(asked) == ["@ann:example.org", "@bob:example.org"]


async def test_the_preview_lists_the_next_steps_soonest_first(
    fake_hs: FakeHomeserver, expiring: Expiring
) -> None:
    now = Clock().now_ms()
    fake_hs.user("@1:example.org", guest=True, last_seen=now - 10 * DAY_MS)
    fake_hs.user("@2:example.org", guest=True, last_seen=now - 20 * DAY_MS)
    fake_hs.user("@alice:example.org", last_seen=now)
    guard = await expiring()
    assert guard.parts.expiry is not None
    total, steps = await guard.parts.expiry.idle.upcoming()
    assert total == 2
    assert [(u.user_id, u.step, u.at) for u in steps] == [
        ("@2:example.org", Step.DEACTIVATE, now - 20 * DAY_MS + 30 * DAY_MS),
        ("@1:example.org", Step.DEACTIVATE, now - 10 * DAY_MS + 30 * DAY_MS),
    ]


async def test_a_pass_with_expiry_off_asks_nothing(
    fake_hs: FakeHomeserver, expiring: Expiring
) -> None:
    fake_hs.user("@1:example.org", guest=True, last_seen=0)
    guard = await expiring()
    assert guard.parts.expiry is not None
    guard.parts.expiry.idle.rules = ExpiryRules(enabled=False)
    assert await idle_found(guard) == {}
    assert fake_hs.called() == []
