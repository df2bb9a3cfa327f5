"""The named guests' timer (named_guests/timer.py): a reminder falling due becomes an
observation for the evaluator, once; the timer sleeps until the next one falls due; a
registration a crash cut off is looked at again. On every supported database, against the
scripted homeserver."""

from __future__ import annotations

from devtools.named_guest_loop import NamedGuestLoop
from guardbot.core.observations import ReminderDue
from guardbot.db.named_guest_store import ACTIVE
from guardbot.named_guests.timer import LONGEST_WAIT_S
from tests.support.fake_homeserver import FakeHomeserver

ANN, BOB = "@ann:example.org", "@bob:example.org"


async def test_a_reminder_due_goes_to_the_inbox_once(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    assert await named.timer.step() == LONGEST_WAIT_S  # nobody to remind
    fake_hs.user(ANN)
    await named.name(ANN)
    await named.timer.step()
    await named.timer.step()  # still due, still waiting to be decided: not added again
    rows = await named.store.inbox.take()
    assert [type(r.observation) for r in rows] == [ReminderDue]
    assert rows[0].observation.user_id == ANN


async def test_the_timer_sleeps_until_the_next_reminder_falls_due(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    fake_hs.user(BOB)
    now = named.clock.now_ms()
    await named.store.confirm(BOB, named.keys.current, now, now + 30_000)
    wait = await named.timer.step()
    assert 0 < wait <= 30 and await named.store.inbox.size() == 0


async def test_a_registration_cut_off_by_a_crash_is_looked_at_again(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    """The homeserver made the account (its last step answered), but the crash came before
    guardbot recorded it: the timer finds the account and starts its reminders."""
    now = named.clock.now_ms()
    await named.store.begin(ANN, named.keys.current, now, now)  # due for a look now
    fake_hs.user(ANN)  # guardbot is no admin here: a login with the derived password tells
    await named.timer.step()
    row = await named.store.get(ANN)
    assert row is not None and row.state == ACTIVE
    assert [c.route for c in fake_hs.called() if c.method == "POST"] == ["login", "logout"]
