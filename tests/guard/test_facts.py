"""What applies to a room (guard/facts.py), gathered for a decision: the directory's word, the
server admin's config, room admins' settings and dry-run switches, and what stored decisions
changed, remembered at once. On the scripted homeserver (tests/support/fake_homeserver.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from devtools.guard_loop import GuardLoop
from guardbot.core.decision import GLOBAL, DryRunSwitch, RoomClassified, RoomPolicySetting
from guardbot.core.policy import Policy, PolicySource
from tests.support.fake_homeserver import FakeHomeserver

LISTED, NEW = "!listed:example.org", "!new:example.org"
Loop = Callable[..., Awaitable[GuardLoop]]


async def test_a_room_never_seen_is_looked_up_once_and_the_look_up_returned(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    fake_hs.publish(NEW)
    guard = await guard_on_fake(listed=[LISTED], policy=Policy.KICK)
    room, classified = await guard.rooms.room(LISTED)
    assert room.listed and room.policy is Policy.KICK and classified is None  # known: no I/O
    assert fake_hs.called() == []
    room, classified = await guard.rooms.room(NEW)
    assert room.listed and isinstance(classified, RoomClassified) and classified.listed
    assert [c.route for c in fake_hs.called()] == ["directory_visibility"]


async def test_stored_decisions_change_the_facts_at_once(guard_on_fake: Loop) -> None:
    guard = await guard_on_fake(listed=[LISTED], policy=Policy.FORBID)
    setting = RoomPolicySetting(LISTED, "kick", "ours", "@alice:example.org", "$p", 1)
    guard.rooms.remember(
        [setting, DryRunSwitch(GLOBAL, True, "@admin:example.org", 2), RoomClassified(NEW, True, 3)]
    )
    facts = await guard.rooms.facts(LISTED)
    assert (facts.policy, facts.source, facts.kick_reason) == (
        Policy.KICK,
        PolicySource.ROOM_ADMINS,
        "ours",
    )
    assert facts.dry_run and guard.rooms.dry_run_everywhere()
    assert [r.room_id for r in guard.rooms.listed_rooms()] == [LISTED, NEW]


async def test_settings_are_loaded_from_the_database(guard_on_fake: Loop) -> None:
    guard = await guard_on_fake(listed=[LISTED])
    setting = RoomPolicySetting(LISTED, "off", None, "@alice:example.org", "$p", 1)
    await guard.decisions.settings.set_room_policy(setting)
    await guard.decisions.settings.set_dry_run(DryRunSwitch(LISTED, True, "@a:example.org", 2))
    await guard.rooms.load()
    facts = await guard.rooms.facts(LISTED)
    assert facts.policy is Policy.OFF and facts.dry_run
