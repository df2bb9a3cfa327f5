"""The rooms where guardbot talks with people: the management room and named guests' DMs.

One owner for the set: intake reads it (there every message counts, not only `!guardbot`
commands), the named guests' carrier opens DMs, and stored decisions close them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from guardbot.core.decision import NamedGuestForgotten, Record


class Conversations:
    def __init__(self, rooms: Iterable[str] = ()) -> None:
        self._rooms = {r for r in rooms if r}

    def __contains__(self, room_id: object) -> bool:
        return room_id in self._rooms

    def __iter__(self) -> Iterator[str]:
        return iter(self._rooms)

    def __len__(self) -> int:
        return len(self._rooms)

    def open(self, room_id: str) -> None:
        self._rooms.add(room_id)

    def remember(self, records: Iterable[Record]) -> None:
        for record in records:
            if isinstance(record, NamedGuestForgotten) and record.dm_room_id:
                self._rooms.discard(record.dm_room_id)
