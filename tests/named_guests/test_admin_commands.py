"""`pwlu list`, `pwlu forget <user>` and `explain <user>` in the management room
(named_guests/admin_commands.py): what a server admin reads, and forgetting a named guest.
Through the evaluator, against the scripted homeserver, on every supported database."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devtools.named_guest_loop import NamedGuestLoop, named_guest_loop
from guardbot import db
from guardbot.commands.parsing import Command
from guardbot.core.decision import NamedGuestForgotten
from guardbot.named_guests.admin_commands import NamedGuestAdmin
from tests.support.conversation import say
from tests.support.fake_homeserver import FakeHomeserver

MGMT, ADMIN = "!mgmt:example.org", "@admin:example.org"
ANN, BOB = "@ann:example.org", "@bob:example.org"


@pytest.fixture
async def managed(database: db.Database, fake_hs: FakeHomeserver) -> AsyncIterator[NamedGuestLoop]:
    """Named guests on, with a management room (and its named guest commands)."""
    loop = await named_guest_loop(database, fake_hs.url, "s" * 40, config={"management_room": MGMT})
    for user in (ANN, BOB):
        fake_hs.user(user)
    await loop.name(ANN, BOB)
    yield loop
    await loop.guard.hs.close()


async def test_the_list_shows_each_named_guest_and_where_they_are(
    managed: NamedGuestLoop,
) -> None:
    lines = (await say(managed.guard, MGMT, "pwlu list", ADMIN)).answer.splitlines()
    assert lines[0] == "Named guests (2):"
    shown = sorted(lines[1:])
    for line, user in zip(shown, (ANN, BOB), strict=True):
        assert line.startswith(f"• {user}: no password yet, 0 reminders sent next ")
        assert line.endswith(" UTC")
    usage = (await say(managed.guard, MGMT, "pwlu frobnicate", ADMIN)).answer
    assert usage == "Usage: pwlu list | pwlu forget <user>"


async def test_forgetting_a_named_guest_ends_their_reminders_and_links(
    managed: NamedGuestLoop,
) -> None:
    said = await say(managed.guard, MGMT, f"pwlu forget {ANN}", ADMIN)
    assert said.answer == f"Forgot {ANN}: no more reminders, their claim links no longer work."
    assert await managed.store.get(ANN) is None
    assert await managed.store.get(BOB) is not None
    again = await say(managed.guard, MGMT, f"pwlu forget {ANN}", ADMIN)
    assert again.answer == f"{ANN} is not a named guest guardbot knows."


async def test_explain_tells_a_named_guests_story(managed: NamedGuestLoop) -> None:
    lines = (await say(managed.guard, MGMT, f"explain {ANN}", ADMIN)).answer.splitlines()
    assert lines[0].startswith(f"{ANN}: no password yet")
    stranger = (await say(managed.guard, MGMT, "explain @zed:example.org", ADMIN)).answer
    assert stranger.startswith("@zed:example.org is not a named guest guardbot knows")


async def test_decide_is_pure_on_what_was_gathered(managed: NamedGuestLoop) -> None:
    admin = NamedGuestAdmin(managed.store)
    forget = Command("pwlu", ("forget", BOB), f"forget {BOB}")
    row = await admin.gather(forget)
    lines, decision = admin.decide(forget, row)
    assert decision.records == (NamedGuestForgotten(BOB, None),)
    assert await managed.store.get(BOB) is not None  # forgotten once the decision is stored
    lines, decision = admin.decide(forget, None)
    assert lines == [f"{BOB} is not a named guest guardbot knows."] and decision.records == ()
