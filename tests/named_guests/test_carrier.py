"""The named guests' carrier (named_guests/carrier.py): reminders on the one path (timer →
observation → decision → `Remind` action → executor → carrier) against faults a test homeserver
will not produce on cue (429 on the password check, a send that fails after the reminder was
decided, a definitive refusal), with the scripted homeserver (tests/support/fake_homeserver.py)
and the real stores, evaluator and executor on every supported database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from devtools.guard_loop import GuardLoop
from devtools.named_guest_loop import NamedGuestLoop, named_guest_loop
from guardbot import db
from guardbot.core.actions import ActionState, WaitingOn
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.guard.executor import OVERALL
from guardbot.named_guests.carrier import REMINDER_MARK, reminder_txn_id
from tests.support.clock import FakeClock
from tests.support.fake_homeserver import DROP, FakeHomeserver, error
from tests.support.queries import action_history, count_claims

USER = "@named:example.org"
BOT = "@guardbot:example.org"
HOUR_MS = 3_600_000


def sent(hs: FakeHomeserver) -> list[str]:
    """The transaction IDs of the messages that reached the homeserver, in order."""
    return [e["unsigned"].get("transaction_id", "") for e in hs.sent() if e["sender"] == BOT]


@dataclass
class Path:
    named: NamedGuestLoop
    hs: FakeHomeserver
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
        """Named guests (accounts on the homeserver) whose first reminder is due now."""
        for user in users:
            self.hs.user(user)
        await self.named.name(*users)

    async def reminders(self) -> list[dict[str, Any]]:
        return [a for a in await action_history(self.loop.actions.db) if a["kind"] == "Remind"]


@pytest.fixture
async def path(database: db.Database, fake_hs: FakeHomeserver) -> AsyncIterator[Path]:
    clock = FakeClock(10 * HOUR_MS)
    named = await named_guest_loop(
        database,
        fake_hs.url,
        "s" * 40,
        every="1h",
        template="{link}",
        clock=clock,
    )
    yield Path(named, fake_hs, clock)
    await named.guard.hs.close()


async def test_a_reminder_goes_once_and_the_next_is_counted_from_when_it_fell_due(
    path: Path,
) -> None:
    await path.name(USER)
    due = path.clock.now_ms()
    path.clock.advance(5)  # the send is late: the next is still an hour after it fell due
    await path.run()
    assert sent(path.hs) == [reminder_txn_id(USER, 1)]
    row = await path.store.get(USER)
    assert row.nags_sent == 1 and row.sending is None and row.next_nag_at == due + HOUR_MS
    await path.run()  # nothing more is due
    assert len(sent(path.hs)) == 1
    (action,) = await path.reminders()
    assert action["state"] == "done" and action["user_id"] == USER
    story = [(r.what, r.result) for r in await path.loop.decisions.audit.find(user_id=USER)]
    assert ("Remind", "done: reminder 1 of 3 sent, in a new DM") in story


async def test_a_rate_limited_check_waits_the_named_time_then_sends_the_same_reminder(
    path: Path,
) -> None:
    await path.name(USER)
    path.hs.script("login", error(429, "M_LIMIT_EXCEEDED", "slow", retry_after_ms=5000))
    await path.run()
    (action,) = await path.reminders()
    assert sent(path.hs) == []
    assert action["state"] == "pending" and action["waiting_on"] == WaitingOn.RATE_LIMIT
    assert (await path.store.get(USER)).sending == 1
    path.clock.advance(5)
    await path.run()
    assert sent(path.hs) == [reminder_txn_id(USER, 1)]


async def test_a_failed_send_is_retried_as_the_same_reminder_with_one_live_link(
    path: Path,
) -> None:
    await path.name(USER)
    path.hs.script("send", error(503, "M_UNKNOWN", "busy"))
    await path.run()
    row = await path.store.get(USER)
    assert sent(path.hs) == [] and row.sending == 1 and row.nags_sent == 0
    path.clock.advance(10)  # past the backoff
    await path.run()
    row = await path.store.get(USER)
    assert sent(path.hs) == [reminder_txn_id(USER, 1)]
    assert row.sending is None and row.nags_sent == 1
    assert row.next_nag_at > path.clock.now_ms() + 3_000_000  # the next an hour on, not now
    assert await count_claims(path.store.db, USER) == 1  # the one sent replaced the lost one's


async def test_a_send_that_went_before_a_crash_is_found_not_repeated(path: Path) -> None:
    await path.name(USER)
    path.hs.script("send", error(503, "M_UNKNOWN", "busy"))
    await path.run()
    # It had reached the homeserver after all (the answer was lost), beyond its memory of
    # transaction IDs: the retry finds it in the DM.
    dm = (await path.store.get(USER)).dm_room_id
    path.hs.room(dm).say(BOT, {REMINDER_MARK: {"n": 1}}, txn="other-txn")
    path.clock.advance(10)
    await path.run()
    assert sent(path.hs) == ["other-txn"]
    assert (await path.store.get(USER)).nags_sent == 1


async def test_a_refused_check_ends_reminders_without_a_message(path: Path) -> None:
    await path.name(USER)
    path.hs.users[USER]["password"] = "their own"
    await path.run()
    row = await path.store.get(USER)
    assert sent(path.hs) == []
    assert row.state == "done" and row.password_set and row.done_reason == "password set elsewhere"
    assert await path.store.due(path.clock.now_ms() + 10**9) == []
    (action,) = await path.reminders()
    assert action["state"] == ActionState.SKIPPED


async def test_a_definitive_refusal_spends_the_reminder_and_the_next_still_comes(
    path: Path,
) -> None:
    await path.name(USER)
    path.hs.script("create_room", error(400, "M_UNKNOWN", "no"))
    await path.run()
    row = await path.store.get(USER)
    assert sent(path.hs) == [] and row.nags_sent == 1 and row.next_nag_at is not None
    (action,) = await path.reminders()
    assert action["state"] == ActionState.FAILED
    path.clock.advance(3600)
    await path.run()
    assert sent(path.hs) == [reminder_txn_id(USER, 2)]


async def test_a_reminder_that_waited_for_the_homeserver_goes_when_it_answers(
    path: Path,
) -> None:
    await path.name(USER)
    path.hs.script("login", DROP)  # the homeserver unreachable
    await path.run()
    (action,) = await path.reminders()
    assert sent(path.hs) == [] and action["waiting_on"] == WaitingOn.HOMESERVER
    # The homeserver answers again (any request that works tells): its decision
    # (HomeserverAnswers) makes this due now, not when its backoff runs out.
    await path.loop.hs.versions()
    await path.loop.evaluator.step()
    await path.loop.run_until_idle()
    assert sent(path.hs) == [reminder_txn_id(USER, 1)]


async def test_the_last_reminder_ends_them_and_explains_why(path: Path) -> None:
    await path.name(USER)
    for _ in range(3):
        await path.run()
        path.clock.advance(3600)
    await path.run()
    assert sent(path.hs) == [reminder_txn_id(USER, n) for n in (1, 2, 3)]
    row = await path.store.get(USER)
    assert row.state == "done" and row.done_reason == "all reminders sent"
    assert row.next_nag_at is None and row.nags_sent == 3


async def test_reminders_due_together_go_out_together_and_each_once(path: Path) -> None:
    """1,000 reminders due at once (an evening's sign-ups, an hour later) went out one after
    another: minutes. Now side by side, as many as the executor runs at once, each once."""
    users = [f"@crowd{i}:example.org" for i in range(40)]
    await path.name(*users)
    path.hs.slow("send", 0.05)
    await path.run()
    assert sorted(sent(path.hs)) == sorted(reminder_txn_id(user, 1) for user in users)
    assert 1 < path.hs.most_at_once("send") <= OVERALL
    for user in users:
        assert (await path.store.get(user)).nags_sent == 1


async def test_a_rate_limit_met_by_one_reminder_holds_back_the_rest(path: Path) -> None:
    users = [f"@held{i}:example.org" for i in range(40)]
    await path.name(*users)
    path.hs.script("send", error(429, "M_LIMIT_EXCEEDED", "slow", retry_after_ms=60_000))
    path.hs.slow("send", 0.01)
    await path.run()
    went = len(sent(path.hs))
    assert went < len(users) - 1  # those not yet started when it came wait too
    assert path.loop.executor.limits.until["Remind"] >= path.clock.now_ms() + 59_000
    await path.run()
    assert len(sent(path.hs)) == went
    # Nothing was sent twice, and nobody's count moved without a message.
    assert len(set(sent(path.hs))) == went
    counted = [user for user in users if (await path.store.get(user)).nags_sent == 1]
    assert len(counted) == went
    path.clock.advance(61)
    for _ in range(60):  # after the wait, one at a time for a while, then all
        await path.run()
        path.clock.advance(1)
    assert sorted(sent(path.hs)) == sorted(reminder_txn_id(user, 1) for user in users)
