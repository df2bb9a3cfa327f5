"""The one wiring (guardbot/wiring.py): every part built from the config, as the app, the
tests and the benchmarks get it: which carrier carries out which action, who decides what is
said, the named guests only when turned on, and the homeserver client's "I answer again"
reaching the evaluator. Against the scripted homeserver, on every supported database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from devtools.guard_loop import GuardLoop
from devtools.named_guest_loop import named_guest_loop
from guardbot import db
from guardbot.commands.management import Management
from guardbot.commands.room import RoomCommands
from guardbot.core.actions import ForbidGuestAccess, JoinRoom, Kick, Notice, Remind, Sweep
from guardbot.guard.room_carrier import RoomCarrier
from guardbot.matrix.client import HomeserverError
from guardbot.named_guests.carrier import NamedGuestCarrier
from tests.support.fake_homeserver import DROP, FakeHomeserver

Loop = Callable[..., Awaitable[GuardLoop]]


async def test_the_guard_alone_carries_out_room_actions_and_hears_commands(
    guard_on_fake: Loop,
) -> None:
    guard = await guard_on_fake(management_room="!mgmt:example.org")
    parts = guard.parts
    assert parts.named_guests is None
    carriers = parts.executor.carriers
    assert {type(carriers[k]) for k in (Kick, ForbidGuestAccess, Sweep, JoinRoom, Notice)} == {
        RoomCarrier
    }
    assert Remind not in carriers
    deciders = parts.evaluator.deciders
    assert [type(d) for d in deciders] == [RoomCommands, Management]
    assert "!mgmt:example.org" in parts.facts.conversations


async def test_named_guests_add_their_carrier_and_decider(
    database: db.Database, fake_hs: FakeHomeserver
) -> None:
    named = await named_guest_loop(database, fake_hs.url, "s" * 40)
    try:
        parts = named.guard.parts
        assert parts.named_guests is not None
        assert isinstance(parts.executor.carriers[Remind], NamedGuestCarrier)
        assert parts.evaluator.named_guests is parts.named_guests.decider
    finally:
        await named.guard.hs.close()


async def test_the_homeserver_answering_again_wakes_the_evaluator(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    guard = await guard_on_fake()
    fake_hs.script("join", DROP)
    fake_hs.room("!r:example.org")
    with pytest.raises(HomeserverError):
        await guard.hs.join("!r:example.org")
    assert guard.hs.unreachable and not guard.inbox_wakeup.take_homeserver_back()
    await guard.hs.versions()
    assert guard.inbox_wakeup.take_homeserver_back()
