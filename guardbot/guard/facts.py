"""What applies to a room, gathered for a decision: listed or not (the directory), the
policy and dry-run (the server admin's config, room admins' settings, the management room's
switches). Reads only; `remember` applies what a stored decision recorded.
"""

from __future__ import annotations

from collections.abc import Iterable

from guardbot.core.decision import (
    GLOBAL,
    DryRunSwitch,
    Record,
    RoomClassified,
    RoomPolicySetting,
    WatchDirectory,
)
from guardbot.core.policy import RoomFacts, ServerPolicy, room_facts
from guardbot.db import SettingsStore
from guardbot.guard.directory import Directory


class RoomFactSource:
    def __init__(self, server: ServerPolicy, directory: Directory, settings: SettingsStore) -> None:
        self.server = server
        self.directory = directory
        self.settings = settings
        self.policies: dict[str, RoomPolicySetting] = {}
        self.dry_runs: dict[str, bool] = {}

    async def load(self) -> None:
        self.policies = await self.settings.room_policies()
        self.dry_runs = await self.settings.dry_runs()

    def of_known(self, room_id: str, listed: bool) -> RoomFacts:
        policy = self.policies.get(room_id)
        guest_free = self.directory.is_guest_free(room_id)
        return room_facts(
            self.server, room_id, listed, policy, self.dry_runs, guest_free=guest_free
        )

    async def room(self, room_id: str) -> tuple[RoomFacts, RoomClassified | None]:
        """The room's facts, and the directory look-up made for them if it was never seen."""
        listed, classified = await self.directory.classify(room_id)
        return self.of_known(room_id, listed), classified

    async def facts(self, room_id: str) -> RoomFacts:
        """The room's facts as they stand, for a re-check or an answer (nothing recorded)."""
        return (await self.room(room_id))[0]

    def dry_run_everywhere(self) -> bool:
        return self.dry_runs.get(GLOBAL, self.server.dry_run)

    def listed_rooms(self) -> tuple[RoomFacts, ...]:
        return tuple(self.of_known(r, True) for r in sorted(self.directory.listed))

    def remember(self, records: Iterable[Record]) -> None:
        for record in records:
            match record:
                case RoomPolicySetting():
                    self.policies[record.room_id] = record
                case DryRunSwitch():
                    self.dry_runs[record.room_id] = record.enabled
                case RoomClassified():
                    self.directory.remember(record)
                case WatchDirectory():
                    self.directory.publishing(record.room_id)
