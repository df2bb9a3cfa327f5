"""Named guests put together from config (named_guests/service.py): the routes they add,
which actions they carry out, a counted reminder waking the timer, and the count by state for
the metrics. On every supported database, against the scripted homeserver."""

from __future__ import annotations

from aiohttp import web

from devtools.named_guest_loop import NamedGuestLoop
from guardbot.core.actions import CarryOver, Kick, Remind, TellPasswordSet
from guardbot.core.decision import ReminderCounted, RoomWoken
from guardbot.named_guests.service import NamedGuestService
from tests.support.clock import CountingWakeup
from tests.support.fake_homeserver import FakeHomeserver
from tests.support.metrics import gauge


def service(named: NamedGuestLoop) -> NamedGuestService:
    assert named.guard.parts.named_guests is not None
    return named.guard.parts.named_guests


async def test_its_routes_are_the_api_and_the_claim_page(named: NamedGuestLoop) -> None:
    app = web.Application()
    service(named).add_routes(app)
    paths = {r.resource.canonical for r in app.router.routes() if r.resource is not None}
    assert paths == {
        "/_guardbot/v1/pwlu/register",
        "/_guardbot/v1/pwlu/status",
        "/_guardbot/v1/pwlu/password",
        "/_guardbot/claim/{token}",
    }


async def test_it_carries_out_a_named_guests_actions_and_nothing_else(
    named: NamedGuestLoop,
) -> None:
    carriers = service(named).carriers
    assert all(kind in carriers for kind in (Remind, TellPasswordSet, CarryOver))
    assert Kick not in carriers
    assert named.guard.executor.carriers[Remind] is service(named).carrier


async def test_a_counted_reminder_wakes_the_timer(named: NamedGuestLoop) -> None:
    """The next reminder may fall due before the timer's next look."""
    service(named).timer_wakeup = woken = CountingWakeup()
    service(named).remember([RoomWoken("!r:example.org")])
    assert woken.count == 0
    service(named).remember([ReminderCounted("@ann:example.org", 1, 5_000)])
    assert woken.count == 1


async def test_named_guests_are_counted_by_state(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    for user in ("@ann:example.org", "@bob:example.org"):
        fake_hs.user(user)
    await named.name("@ann:example.org", "@bob:example.org")
    await service(named).count()
    counts = await named.store.counts()
    assert sum(counts.values()) == 2
    for state, n in counts.items():
        assert gauge("guardbot_named_guests", state=state) == n
