"""The reminder scheduler against faults a test homeserver will not produce on cue (429 on the
login probe, a send that fails after "nag n is going out" was recorded), with a fake client
and the real store on every supported database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.db.named_guests import PwluStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import HomeserverError
from guardbot.pwlu.accounts import Accounts, UserLocks
from guardbot.pwlu.nags import CONCURRENT, Nagger, NagSettings, nag_txn_id
from guardbot.pwlu.passwords import KeyRing

USER = "@named:example.org"


def now_ms() -> int:
    return Clock().now_ms()


BOT = "@guardbot:example.org"


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

    async def login(self, user_id: str, password: str) -> str:
        self._fault("login")
        if not self.password_ok:
            raise HomeserverError(403, "M_FORBIDDEN", "Invalid username or password", {})
        return "probe-token"

    async def logout(self, token: str) -> None:
        pass

    async def deactivated(self, user_id: str) -> bool | None:
        return False

    async def create_dm(self, user_id: str, marker: str) -> str:
        return "!dm:example.org" if user_id == USER else f"!dm-{user_id[1:]}"

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
        return [{"sender": BOT, "content": c} for _, _, c in self.sent]


@pytest.fixture
async def setup(database: db.Database) -> tuple[Nagger, FakeClient, PwluStore]:
    store = PwluStore(database)
    keys = KeyRing("s" * 40)
    client = FakeClient()
    locks = UserLocks()
    settings = NagSettings(
        first_after_ms=0,
        every_ms=3_600_000,
        max=3,
        template="{link}",
        html_template="{link}",
        public_url="https://example.org",
        claim_ttl_ms=60_000,
    )
    clock = Clock()
    accounts = Accounts(client, store, keys, locks, clock)  # type: ignore[arg-type]
    nagger = Nagger(
        settings, client, store, keys, accounts, locks, Conversations(), clock, Wakeup()
    )  # type: ignore[arg-type]
    await store.confirm(USER, keys.current, now_ms(), now_ms() - 1)
    return nagger, client, store


async def test_rate_limited_probe_defers_by_retry_after(setup: Any) -> None:
    nagger, client, store = setup
    client.faults["login"] = [
        HomeserverError(429, "M_LIMIT_EXCEEDED", "slow", {"retry_after_ms": 5000})
    ]
    before = now_ms()
    await nagger.run_once()
    row = await store.get(USER)
    assert client.sent == []
    assert row.nags_sent == 0 and row.sending is None and row.attempts == 1
    assert before + 5000 <= row.next_nag_at <= now_ms() + 5000


async def test_failed_send_is_retried_as_the_same_nag(setup: Any) -> None:
    nagger, client, store = setup
    client.faults["send"] = [HomeserverError(503, "M_UNKNOWN", "busy", {})]
    await nagger.run_once()
    row = await store.get(USER)
    assert client.sent == [] and row.sending == 1 and row.nags_sent == 0
    await store.defer(USER, now_ms() - 1)  # due again now
    await nagger.run_once()
    row = await store.get(USER)
    assert [txn for _, txn, _ in client.sent] == [nag_txn_id(USER, 1)]
    assert row.sending is None and row.nags_sent == 1
    assert row.next_nag_at > now_ms() + 3_000_000  # the next one an hour on, not now
    assert await store.count_claims(USER) == 1  # the one sent replaced the lost one's


async def test_a_refused_probe_ends_reminders_without_a_message(setup: Any) -> None:
    nagger, client, store = setup
    client.password_ok = False
    await nagger.run_once()
    row = await store.get(USER)
    assert client.sent == []
    assert row.state == "done" and row.password_set and row.done_reason == "password set elsewhere"
    assert await store.due(now_ms() + 10**9) == []


async def test_a_reminder_that_waited_for_the_homeserver_goes_when_it_answers(setup: Any) -> None:
    nagger, client, store = setup
    client.faults["login"] = [HomeserverError(0, "M_CONNECTION_FAILED", "down", {})]
    await nagger.run_once()
    row = await store.get(USER)
    assert client.sent == [] and row.next_nag_at > now_ms()  # backed off
    client.faults["login"] = [HomeserverError(429, "M_LIMIT_EXCEEDED", "slow", {})]
    await store.defer(USER, now_ms() - 1)
    await nagger.run_once()  # a rate limit: waits its time, not for the homeserver
    await store.wake_deferred(now_ms())  # what the homeserver's coming back does
    await nagger.step()
    assert client.sent == [] and nagger.limited_until > now_ms()  # every reminder holds
    nagger.limited_until = now_ms() - 1  # the wait the homeserver named is over
    client.faults["login"] = [HomeserverError(502, "M_UNKNOWN", "bad gateway", {})]
    await store.defer(USER, now_ms() - 1)
    await nagger.run_once()
    assert client.sent == []
    # The homeserver answers again: its decision (HomeserverAnswers) makes this due now.
    await store.wake_deferred(now_ms())
    await nagger.step()
    assert [txn for _, txn, _ in client.sent] == [nag_txn_id(USER, 1)]


async def test_reminders_due_together_go_out_together_and_each_once(setup: Any) -> None:
    """1,000 reminders due at once (an evening's sign-ups, an hour later) went out one after
    another: minutes. Now side by side, at most CONCURRENT at a time, each exactly once."""
    nagger, client, store = setup
    users = [USER] + [f"@crowd{i}:example.org" for i in range(40)]
    for user in users[1:]:
        await store.confirm(user, nagger.keys.current, now_ms(), now_ms() - 1)
    client.delay = 0.05
    await nagger.step()
    txns = [txn for _, txn, _ in client.sent]
    assert sorted(txns) == sorted(nag_txn_id(user, 1) for user in users)  # each once
    assert 1 < client.most_in_flight <= CONCURRENT
    for user in users:
        assert (await store.get(user)).nags_sent == 1


async def test_a_rate_limit_met_by_one_reminder_holds_back_the_rest(setup: Any) -> None:
    nagger, client, store = setup
    users = [USER] + [f"@held{i}:example.org" for i in range(40)]
    for user in users[1:]:
        await store.confirm(user, nagger.keys.current, now_ms(), now_ms() - 1)
    limit = HomeserverError(429, "M_LIMIT_EXCEEDED", "slow", {"retry_after_ms": 60_000})
    client.faults["send"] = [limit]
    client.delay = 0.01
    await nagger.run_once()
    sent = len(client.sent)
    assert sent < len(users) - 1  # those not yet started when it came wait too
    assert nagger.limited_until >= now_ms() + 59_000
    assert await nagger.run_once() == 0 and len(client.sent) == sent
    assert 5 < await nagger.step() <= 60  # the loop sleeps until the wait is over
    # Nothing was sent twice, and nobody's count moved without a message.
    assert len({txn for _, txn, _ in client.sent}) == sent
    counted = [user for user in users if (await store.get(user)).nags_sent == 1]
    assert len(counted) == sent
