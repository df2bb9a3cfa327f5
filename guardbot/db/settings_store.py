"""Settings that change at run time: room admins' policies, dry-run switches, and when the
homeserver last called the door (and last called it with a token guardbot refused)."""

from __future__ import annotations

from mautrix.util.async_db import Database

from guardbot.core.decision import DryRunSwitch, RoomPolicySetting


class SettingsStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def room_policies(self) -> dict[str, RoomPolicySetting]:
        rows = await self.db.fetch(
            "SELECT room_id, policy, reason, set_by, event_id, set_at FROM room_policy"
        )
        return {r["room_id"]: RoomPolicySetting(**dict(r)) for r in rows}

    async def set_room_policy(self, setting: RoomPolicySetting) -> None:
        await self.db.execute(
            "INSERT INTO room_policy (room_id, policy, reason, set_by, event_id, set_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (room_id) DO UPDATE SET"
            " policy=$2, reason=$3, set_by=$4, event_id=$5, set_at=$6",
            setting.room_id,
            setting.policy,
            setting.reason,
            setting.set_by,
            setting.event_id,
            setting.set_at,
        )

    async def dry_runs(self) -> dict[str, bool]:
        rows = await self.db.fetch("SELECT room_id, enabled FROM dry_run")
        return {r["room_id"]: bool(r["enabled"]) for r in rows}

    async def set_dry_run(self, switch: DryRunSwitch) -> None:
        await self.db.execute(
            "INSERT INTO dry_run (room_id, enabled, set_by, set_at) VALUES ($1, $2, $3, $4)"
            " ON CONFLICT (room_id) DO UPDATE SET enabled=$2, set_by=$3, set_at=$4",
            switch.room_id,
            switch.enabled,
            switch.set_by,
            switch.set_at,
        )

    # The door's two calls worth remembering, for doctor: the last one answered, and the last
    # one whose token guardbot refused. One row each.
    async def door_seen(self, what: str, now: int) -> None:
        await self._remember("door_seen", what, now)

    async def door_last_seen(self) -> tuple[str, int] | None:
        return await self._last("door_seen")

    async def door_token_refused(self, what: str, now: int) -> None:
        await self._remember("door_token_refused", what, now)

    async def door_last_refused(self) -> tuple[str, int] | None:
        return await self._last("door_token_refused")

    async def _remember(self, table: str, what: str, now: int) -> None:
        await self.db.execute(
            f"INSERT INTO {table} (id, what, at) VALUES (1, $1, $2)"
            " ON CONFLICT (id) DO UPDATE SET what=$1, at=$2",
            what,
            now,
        )

    async def _last(self, table: str) -> tuple[str, int] | None:
        row = await self.db.fetchrow(f"SELECT what, at FROM {table} WHERE id=1")
        return (row["what"], row["at"]) if row else None
