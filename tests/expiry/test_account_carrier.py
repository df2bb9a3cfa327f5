"""Ending an account (expiry/account_carrier.py): each step re-checked on fresh facts right
before it is done (used since, an admin now, a password of their own), then done through the
admin API, dry-run saying what it would do, and what was done reported back. Through the
executor, against the scripted homeserver, on every supported database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from devtools.guard_loop import GuardLoop
from guardbot.core.actions import Deactivate, Suspend, Unsuspend
from guardbot.core.clock import Clock
from guardbot.core.observations import AccountEnded
from tests.support.fake_homeserver import FakeHomeserver
from tests.support.queries import action_history

Expiring = Callable[..., Awaitable[GuardLoop]]
DAY_MS = 86_400_000
GUEST, ANN = "@7:example.org", "@ann:example.org"


async def carry_out(guard: GuardLoop, action: Any) -> tuple[dict[str, Any], list[Any]]:
    """The action queued and carried out: its row after, and what it reported back."""
    await guard.actions.add([action], Clock().now_ms())
    await guard.executor.run_once()
    rows = [r for r in await action_history(guard.actions.db) if r["user_id"] == action.user_id]
    return rows[-1], [r.observation for r in await guard.inbox.take()]


async def test_an_idle_guest_is_deactivated(fake_hs: FakeHomeserver, expiring: Expiring) -> None:
    idle_since = Clock().now_ms() - 40 * DAY_MS
    fake_hs.user(GUEST, guest=True, last_seen=idle_since)
    guard = await expiring(**{"expiry.erase": True})
    row, found = await carry_out(guard, Deactivate(GUEST, idle_since, erase=True))
    assert row["state"] == "done" and "deactivated and erased" in row["outcome"]
    (call,) = fake_hs.called("deactivate")
    assert call.body == {"erase": True} and fake_hs.users[GUEST]["deactivated"]
    assert [type(o) for o in found] == [AccountEnded]


async def test_a_guest_used_since_the_decision_is_left_alone(
    fake_hs: FakeHomeserver, expiring: Expiring
) -> None:
    now = Clock().now_ms()
    fake_hs.user(GUEST, guest=True, last_seen=now - DAY_MS)  # back yesterday
    guard = await expiring()
    row, found = await carry_out(guard, Deactivate(GUEST, now - 40 * DAY_MS, erase=False))
    assert row["state"] == "skipped" and "used since the decision" in row["outcome"]
    assert fake_hs.called("deactivate") == [] and found == []


async def test_a_named_guest_is_never_suspended_unproven_and_a_suspension_is_lifted(
    fake_hs: FakeHomeserver, expiring: Expiring
) -> None:
    """With named guests off, nothing can prove a named guest still has no password of their
    own: the step is skipped, not done (tests/integration/test_expiry.py suspends one with
    the proof, against Synapse). A suspension guardbot holds is lifted on its own."""
    now = Clock().now_ms()
    idle_since = now - 100 * DAY_MS
    fake_hs.user(ANN, last_seen=idle_since)
    guard = await expiring()
    await guard.decisions.named_guests.confirm(ANN, "k1", now, now + DAY_MS)
    row, found = await carry_out(guard, Suspend(ANN, idle_since))
    assert row["state"] == "skipped" and "cannot check their password" in row["outcome"]
    assert fake_hs.called("suspend") == [] and found == []
    fake_hs.users[ANN]["suspended"] = True
    row, _ = await carry_out(guard, Unsuspend(ANN, now))
    assert row["state"] == "done" and not fake_hs.users[ANN]["suspended"]
    assert [c.body for c in fake_hs.called("suspend")] == [{"suspend": False}]


async def test_dry_run_says_what_it_would_do(fake_hs: FakeHomeserver, expiring: Expiring) -> None:
    idle_since = Clock().now_ms() - 40 * DAY_MS
    fake_hs.user(GUEST, guest=True, last_seen=idle_since)
    guard = await expiring(**{"expiry.dry_run": True})
    row, _ = await carry_out(guard, Deactivate(GUEST, idle_since, erase=False))
    assert row["state"] == "dry_run" and row["outcome"] == f"dry-run: would deactivate {GUEST}"
    assert not fake_hs.users[GUEST]["deactivated"]
