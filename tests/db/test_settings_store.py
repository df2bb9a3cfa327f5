"""Run-time settings (db/settings_store.py) on every supported database: room admins'
policies and dry-run switches, the latest of each kept, and the door's last calls."""

from __future__ import annotations

from guardbot import db
from guardbot.core.decision import GLOBAL, DryRunSwitch, RoomPolicySetting

ROOM = "!room:example.org"


async def test_a_room_keeps_its_latest_policy(database: db.Database) -> None:
    settings = db.SettingsStore(database)
    assert await settings.room_policies() == {}
    first = RoomPolicySetting(ROOM, "kick", None, "@alice:example.org", "$p1", 1)
    later = RoomPolicySetting(ROOM, "off", "event", "@bob:example.org", "$p2", 2)
    await settings.set_room_policy(first)
    await settings.set_room_policy(later)
    assert await settings.room_policies() == {ROOM: later}


async def test_dry_run_switches_everywhere_and_per_room(database: db.Database) -> None:
    settings = db.SettingsStore(database)
    await settings.set_dry_run(DryRunSwitch(GLOBAL, True, "@admin:example.org", 1))
    await settings.set_dry_run(DryRunSwitch(ROOM, True, "@admin:example.org", 2))
    await settings.set_dry_run(DryRunSwitch(ROOM, False, "@admin:example.org", 3))
    assert await settings.dry_runs() == {GLOBAL: True, ROOM: False}


async def test_the_doors_last_calls_are_one_row_each(database: db.Database) -> None:
    settings = db.SettingsStore(database)
    assert await settings.door_last_seen() is None and await settings.door_last_refused() is None
    await settings.door_seen("ping", 10)
    await settings.door_seen("user_may_join_room", 20)
    await settings.door_token_refused("wrong token", 15)
    assert await settings.door_last_seen() == ("user_may_join_room", 20)
    assert await settings.door_last_refused() == ("wrong token", 15)
