"""Reminders on the one path (timer → observation → decision → `Remind` action → executor)
against faults a test homeserver will not produce on cue (429 on the password check, a send
that fails after the reminder was decided, a definitive refusal), with a fake client and the
real stores, evaluator and executor on every supported database."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.guard_loop import GuardLoop
from devtools.named_guest_loop import NamedGuestLoop, named_guest_loop
from guardbot import db
from guardbot.core.actions import ActionState, WaitingOn
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.guard.executor import OVERALL
from guardbot.matrix.client import HomeserverError
from guardbot.named_guests.carrier import reminder_txn_id
from tests.support.clock import FakeClock
from tests.support.queries import action_history, count_claims

USER = "@named:example.org"
BOT = "@guardbot:example.org"
HOUR_MS = 3_600_000


class FakeClient:
    """Records what guardbot would have done; `faults` maps a call name to errors to raise."""

    bot_user_id = BOT

    def __init__(self) -> None:
        self.faults: dict[str, list[HomeserverError]] = {}
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.password_ok = True
        self.delay = 0.0  # how long a send takes
        self.in_flight = self.most_in_flight = 0

    def _fault(self, name: str) -> None:
        if self.faults.get(name):
            raise self.faults[name].pop(0)

    async def login(self, user_id: str, password: str, on_behalf_of: str | None = None) -> str:
        self._fault("login")
        if not self.password_ok:
            raise HomeserverError(403, "M_FORBIDDEN", "Invalid username or password", {})
        return "probe-token"

    async def logout(self, token: str) -> None:
        pass

    async def deactivated(self, user_id: str) -> bool | None:
        return False

    async def create_dm(self, user_id: str, marker: str) -> str:
        self._fault("create_dm")
        return f"!dm-{user_id[1:]}"

    async def bot_rooms(self) -> list[str]:
        return []  # the DM that failed to be made was never made

    async def displayname(self, user_id: str) -> str | None:
        return None

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        self._fault("send")
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.in_flight -= 1
        self.sent.append((room_id, txn_id, content))
        return "$event"

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return [{"sender": BOT, "content": c} for r, _, c in self.sent if r == room_id]

    def txns(self) -> list[str]:
        return [txn for _, txn, _ in self.sent]


@dataclass
class Path:
    named: NamedGuestLoop
    client: FakeClient
    clock: FakeClock

    @property
    def loop(self) -> GuardLoop:
        return self.named.guard

    @property
    def store(self) -> NamedGuestStore:
        return self.named.store

    async def run(self) -> None:
        """The timer's look, then evaluator and executor until nothing is due now."""
        await self.named.timer.step()
        await self.loop.run_until_idle()

    async def name(self, *users: str) -> None:
        await self.named.name(*users)

    async def reminders(self) -> list[dict[str, Any]]:
        return [a for a in await action_history(self.loop.actions.db) if a["kind"] == "Remind"]


@pytest.fixture
async def path(database: db.Database) -> Path:
    client = FakeClient()
    clock = FakeClock(10 * HOUR_MS)
    named = await named_guest_loop(
        database,
        client,  # type: ignore[arg-type]
        "s" * 40,
        every="1h",
        template="{link}",
        clock=clock,
    )
    return Path(named, client, clock)


async def test_a_reminder_goes_once_and_the_next_is_counted_from_when_it_fell_due(
    path: Path,
) -> None:
    await path.name(USER)
    due = path.clock.now_ms()
    path.clock.advance(5)  # the send is late: the next is still an hour after it fell due
    await path.run()
    assert path.client.txns() == [reminder_txn_id(USER, 1)]
    row = await path.store.get(USER)
    assert row.nags_sent == 1 and row.sending is None and row.next_nag_at == due + HOUR_MS
    await path.run()  # nothing more is due
    assert len(path.client.sent) == 1
    (action,) = await path.reminders()
    assert action["state"] == "done" and action["user_id"] == USER
    story = [(r.what, r.result) for r in await path.loop.decisions.audit.find(user_id=USER)]
    assert ("Remind", "done: reminder 1 of 3 sent, in a new DM") in story


async def test_a_rate_limited_check_waits_the_named_time_then_sends_the_same_reminder(
    path: Path,
) -> None:
    await path.name(USER)
    path.client.faults["login"] = [
        HomeserverError(429, "M_LIMIT_EXCEEDED", "slow", {"retry_after_ms": 5000})
    ]
    await path.run()
    (action,) = await path.reminders()
    assert path.client.sent == []
    assert action["state"] == "pending" and action["waiting_on"] == WaitingOn.RATE_LIMIT
    assert (await path.store.get(USER)).sending == 1
    path.clock.advance(5)
    await path.run()
    assert path.client.txns() == [reminder_txn_id(USER, 1)]


async def test_a_failed_send_is_retried_as_the_same_reminder_with_one_live_link(
    path: Path,
) -> None:
    await path.name(USER)
    path.client.faults["send"] = [HomeserverError(503, "M_UNKNOWN", "busy", {})]
    await path.run()
    row = await path.store.get(USER)
    assert path.client.sent == [] and row.sending == 1 and row.nags_sent == 0
    path.clock.advance(10)  # past the backoff
    await path.run()
    row = await path.store.get(USER)
    assert path.client.txns() == [reminder_txn_id(USER, 1)]
    assert row.sending is None and row.nags_sent == 1
    assert row.next_nag_at > path.clock.now_ms() + 3_000_000  # the next an hour on, not now
    assert await count_claims(path.store.db, USER) == 1  # the one sent replaced the lost one's


async def test_a_send_that_went_before_a_crash_is_found_not_repeated(path: Path) -> None:
    await path.name(USER)
    path.client.faults["send"] = [HomeserverError(503, "M_UNKNOWN", "busy", {})]
    await path.run()
    # It had reached the homeserver after all (the answer was lost), beyond its memory of
    # transaction IDs: the retry finds it in the DM.
    path.client.sent.append(
        ("!dm-named:example.org", "other-txn", {"dev.guardbot.pwlu_nag": {"n": 1}})
    )
    path.clock.advance(10)
    await path.run()
    assert path.client.txns() == ["other-txn"]
    assert (await path.store.get(USER)).nags_sent == 1


async def test_a_refused_check_ends_reminders_without_a_message(path: Path) -> None:
    await path.name(USER)
    path.client.password_ok = False
    await path.run()
    row = await path.store.get(USER)
    assert path.client.sent == []
    assert row.state == "done" and row.password_set and row.done_reason == "password set elsewhere"
    assert await path.store.due(path.clock.now_ms() + 10**9) == []
    (action,) = await path.reminders()
    assert action["state"] == ActionState.SKIPPED


async def test_a_definitive_refusal_spends_the_reminder_and_the_next_still_comes(
    path: Path,
) -> None:
    await path.name(USER)
    path.client.faults["create_dm"] = [HomeserverError(400, "M_UNKNOWN", "no", {})]
    await path.run()
    row = await path.store.get(USER)
    assert path.client.sent == [] and row.nags_sent == 1 and row.next_nag_at is not None
    (action,) = await path.reminders()
    assert action["state"] == ActionState.FAILED
    path.clock.advance(3600)
    await path.run()
    assert path.client.txns() == [reminder_txn_id(USER, 2)]


async def test_a_reminder_that_waited_for_the_homeserver_goes_when_it_answers(
    path: Path,
) -> None:
    await path.name(USER)
    path.client.faults["login"] = [HomeserverError(0, "M_CONNECTION_FAILED", "down", {})]
    await path.run()
    (action,) = await path.reminders()
    assert path.client.sent == [] and action["waiting_on"] == WaitingOn.HOMESERVER
    # The homeserver answers again: its decision (HomeserverAnswers) makes this due now, not
    # when its backoff runs out.
    path.loop.inbox_wakeup.homeserver_back()
    await path.loop.evaluator.step()
    await path.loop.run_until_idle()
    assert path.client.txns() == [reminder_txn_id(USER, 1)]


async def test_the_last_reminder_ends_them_and_explains_why(path: Path) -> None:
    await path.name(USER)
    for _ in range(3):
        await path.run()
        path.clock.advance(3600)
    await path.run()
    assert path.client.txns() == [reminder_txn_id(USER, n) for n in (1, 2, 3)]
    row = await path.store.get(USER)
    assert row.state == "done" and row.done_reason == "all reminders sent"
    assert row.next_nag_at is None and row.nags_sent == 3


async def test_reminders_due_together_go_out_together_and_each_once(path: Path) -> None:
    """1,000 reminders due at once (an evening's sign-ups, an hour later) went out one after
    another: minutes. Now side by side, as many as the executor runs at once, each once."""
    users = [f"@crowd{i}:example.org" for i in range(40)]
    await path.name(*users)
    path.client.delay = 0.05
    await path.run()
    assert sorted(path.client.txns()) == sorted(reminder_txn_id(user, 1) for user in users)
    assert 1 < path.client.most_in_flight <= OVERALL
    for user in users:
        assert (await path.store.get(user)).nags_sent == 1


async def test_a_rate_limit_met_by_one_reminder_holds_back_the_rest(path: Path) -> None:
    users = [f"@held{i}:example.org" for i in range(40)]
    await path.name(*users)
    limit = HomeserverError(429, "M_LIMIT_EXCEEDED", "slow", {"retry_after_ms": 60_000})
    path.client.faults["send"] = [limit]
    path.client.delay = 0.01
    await path.run()
    sent = len(path.client.sent)
    assert sent < len(users) - 1  # those not yet started when it came wait too
    assert path.loop.executor.limits.until["Remind"] >= path.clock.now_ms() + 59_000
    await path.run()
    assert len(path.client.sent) == sent
    # Nothing was sent twice, and nobody's count moved without a message.
    assert len(set(path.client.txns())) == sent
    counted = [user for user in users if (await path.store.get(user)).nags_sent == 1]
    assert len(counted) == sent
    path.clock.advance(61)
    for _ in range(60):  # after the wait, one at a time for a while, then all
        await path.run()
        path.clock.advance(1)
    assert sorted(path.client.txns()) == sorted(reminder_txn_id(user, 1) for user in users)
