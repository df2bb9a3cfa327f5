"""Who may do what in a room, from its power levels. Pure: callers fetch the state events.

Room version 12 gives the room's creators unlimited power and leaves them out of
`power_levels.users`, so the create event is needed too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

INFINITE = float("inf")


@dataclass(frozen=True)
class RoomPower:
    levels: dict[str, Any]
    creators: frozenset[str] = frozenset()

    @classmethod
    def from_state(cls, levels: dict | None, create_event: dict | None) -> RoomPower:
        creators: set[str] = set()
        if create_event:
            content = create_event.get("content") or {}
            version = str(content.get("room_version", "1"))
            if version.isdigit() and int(version) >= 12:
                creators.add(str(create_event.get("sender", "")))
                extra = content.get("additional_creators")
                if isinstance(extra, list):
                    creators.update(str(u) for u in extra)
        return cls(levels or {}, frozenset(creators))

    def _int(self, key: str, default: int) -> int:
        value = self.levels.get(key, default)
        return value if isinstance(value, int) else default

    def of(self, user_id: str) -> float:
        if user_id in self.creators:
            return INFINITE
        users = self.levels.get("users")
        value = users.get(user_id) if isinstance(users, dict) else None
        return value if isinstance(value, int) else self._int("users_default", 0)

    def needed_for_state(self, event_type: str) -> int:
        events = self.levels.get("events")
        value = events.get(event_type) if isinstance(events, dict) else None
        return value if isinstance(value, int) else self._int("state_default", 50)

    def may_send_state(self, user_id: str, event_type: str) -> bool:
        return self.of(user_id) >= self.needed_for_state(event_type)

    def may_kick(self, user_id: str) -> bool:
        return self.of(user_id) >= self._int("kick", 50)

    def missing_for_bot(self, bot: str, needs_guest_access: bool) -> list[str]:
        """What guardbot lacks to enforce a policy here, in words for the room's admins."""
        missing = []
        if not self.may_kick(bot):
            missing.append(f"power to kick (level {self._int('kick', 50)})")
        if needs_guest_access and not self.may_send_state(bot, "m.room.guest_access"):
            level = self.needed_for_state("m.room.guest_access")
            missing.append(f"power to change guest access (level {level})")
        return missing
