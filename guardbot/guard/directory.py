"""The listed-room set: the rooms in this server's public room directory.

Publishing a room sends no event to appservices, so guardbot polls /publicRooms and diffs it
against what it knew; a room it meets before the next poll is looked up on its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from guardbot import metrics
from guardbot.core.clock import now_ms
from guardbot.db import RoomStore
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger("guardbot.guard.directory")


class Directory:
    def __init__(
        self, hs: Homeserver, rooms: RoomStore, poll_interval: float, page_size: int
    ) -> None:
        self.hs = hs
        self.rooms = rooms
        self.poll_interval = poll_interval
        self.page_size = page_size
        self.listed: set[str] = set()
        self._classified: dict[str, bool] = {}
        self.last_poll_at: float | None = None
        self.last_poll_seconds: float | None = None
        self.wake: Callable[[], None] = lambda: None  # new inbox rows to evaluate

    async def load(self) -> None:
        self.listed = await self.rooms.listed()
        self._classified = dict.fromkeys(self.listed, True)

    async def scan(self) -> set[str]:
        """One full paginated pass over the directory."""
        found: set[str] = set()
        since: str | None = None
        for _ in range(100_000):  # bounded even if the server keeps handing out next_batch
            page = await self.hs.public_rooms_page(self.page_size, since)
            for entry in page.get("chunk") or []:
                if isinstance(entry, dict) and isinstance(entry.get("room_id"), str):
                    found.add(entry["room_id"])
            since = page.get("next_batch")
            if not since:
                break
        return found

    async def poll_once(self) -> tuple[list[str], set[str]]:
        started = time.monotonic()
        found = await self.scan()
        gone = self.listed - found
        newly = await self.rooms.apply(found - self.listed, gone, now_ms())
        self.listed = found
        for room_id in gone:
            self._classified[room_id] = False
        for room_id in found:
            self._classified[room_id] = True
        self.last_poll_at = time.time()
        self.last_poll_seconds = time.monotonic() - started
        metrics.DIRECTORY_POLL_SECONDS.observe(self.last_poll_seconds)
        metrics.LISTED_ROOMS.set(len(self.listed))
        if newly or gone:
            log.info("Directory: %d newly listed, %d unlisted", len(newly), len(gone))
        if newly:
            self.wake()
        return newly, gone

    async def is_listed(self, room_id: str) -> bool:
        """Listed? A room never seen is looked up at once rather than at the next poll."""
        known = self._classified.get(room_id)
        if known is not None:
            return known
        stored = await self.rooms.known(room_id)
        if stored is None:
            listed = await self.hs.directory_visibility(room_id) == "public"
            now = now_ms()
            if listed:
                await self.rooms.apply({room_id}, set(), now)
                self.listed.add(room_id)
                metrics.LISTED_ROOMS.set(len(self.listed))
                self.wake()
            else:
                await self.rooms.apply(set(), {room_id}, now)
            stored = listed
        self._classified[room_id] = stored
        return stored

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except HomeserverError as e:
                log.warning("Directory poll failed, trying again in %ss: %s", self.poll_interval, e)
            except Exception:
                log.exception("Directory poll failed unexpectedly")
            await asyncio.sleep(self.poll_interval)
