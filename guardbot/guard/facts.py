"""What applies to a room: is it listed, which policy and who chose it, is it in dry-run.

A policy comes from, in order: the server admin's per-room override (`policy.rooms`), the room
admins' own policy state event, the server default (`policy.listed_rooms`).
"""

from __future__ import annotations

import logging

from guardbot.config import Config
from guardbot.core.clock import now_ms
from guardbot.core.observations import RoomPolicyChange
from guardbot.core.policy import Policy, PolicyRuling, RoomFacts
from guardbot.db.room_settings import GLOBAL, RoomPolicySetting, SettingsStore
from guardbot.guard.directory import Directory

log = logging.getLogger("guardbot.guard.facts")


class Rooms:
    def __init__(self, config: Config, directory: Directory, settings: SettingsStore) -> None:
        self.config = config
        self.directory = directory
        self.settings = settings
        self.policies: dict[str, RoomPolicySetting] = {}
        self.dry_runs: dict[str, bool] = {}

    async def load(self) -> None:
        self.policies = await self.settings.room_policies()
        self.dry_runs = await self.settings.dry_runs()

    def policy(self, room_id: str) -> tuple[Policy, str | None, str]:
        """(policy, room admins' reason or None, where it comes from)."""
        override = (self.config["policy.rooms"] or {}).get(room_id)
        if override:
            return Policy(override), None, "the server admin's per-room setting"
        setting = self.policies.get(room_id)
        if setting:
            return Policy(setting.policy), setting.reason, f"the room's admins ({setting.set_by})"
        return Policy(self.config["policy.listed_rooms"]), None, "the server default"

    def dry_run(self, room_id: str) -> bool:
        if room_id in self.dry_runs:
            return self.dry_runs[room_id]
        return self.dry_runs.get(GLOBAL, bool(self.config["policy.dry_run"]))

    async def facts(self, room_id: str) -> RoomFacts:
        policy, reason, source = self.policy(room_id)
        return RoomFacts(
            room_id=room_id,
            listed=await self.directory.is_listed(room_id),
            policy=policy,
            kick_reason=reason or self.config["policy.kick_reason"],
            restore_notice=self.config["policy.restore_notice"],
            policy_source=source,
            dry_run=self.dry_run(room_id),
        )

    async def record_policy(self, change: RoomPolicyChange, ruling: PolicyRuling) -> None:
        assert ruling.policy is not None
        setting = RoomPolicySetting(
            change.room_id, ruling.policy.value, ruling.reason, ruling.set_by, change.event_id,
            now_ms(),
        )  # fmt: skip
        await self.settings.set_room_policy(setting)
        self.policies[change.room_id] = setting

    async def set_dry_run(self, room_id: str, enabled: bool, set_by: str) -> None:
        await self.settings.set_dry_run(room_id, enabled, set_by, now_ms())
        self.dry_runs[room_id] = enabled
