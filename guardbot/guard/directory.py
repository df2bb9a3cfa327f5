"""The listed-room set: the rooms in this server's public room directory.

Publishing a room sends no event to appservices, so guardbot polls /publicRooms and diffs it
against what it knew; each newly listed room goes to the inbox with the poll's record, in one
transaction. The same pages carry each room's joined-member count: a count that moved since the
last poll means someone came or went, seen or not (the homeserver can lose events), and the
room goes to the inbox for a re-check of its members; a slow re-check of every listed room
catches what a count cannot. A room met before the next poll is looked up on its own
(`classify`, a read); the evaluator stores what it learned with its decision and then tells the
directory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.decision import RoomClassified
from guardbot.core.observations import RecheckDue
from guardbot.db import RoomStore
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger(__name__)

# After the door saw a publication: seconds until each look at the directory. The homeserver
# publishes right after it asked; a rule may still refuse, and the poll catches the rest.
PUBLICATION_CHECKS = (0.05, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)


class Directory:
    def __init__(
        self,
        hs: Homeserver,
        rooms: RoomStore,
        clock: Clock,
        inbox_wakeup: Wakeup,
        *,
        poll_interval: float,
        page_size: int,
        recheck_every: float = 0,
        guest_free: Sequence[str] = (),
    ) -> None:
        self.hs = hs
        self.rooms = rooms
        self.clock = clock
        self.inbox_wakeup = inbox_wakeup  # newly listed rooms wait there to be decided on
        self.poll_interval = poll_interval
        self.page_size = page_size
        # The slow re-check of every listed room, in seconds (0: never); the first one only
        # after a full interval, not at every start.
        self.recheck_every = recheck_every
        self._recheck_at = clock.monotonic() + recheck_every
        self.listed: set[str] = set()
        self._classified: dict[str, bool] = {}
        self._members: dict[str, int] = {}  # listed room -> joined members at the last poll
        # Rooms known listed before any poll counted them (looked up when guardbot met them,
        # or published under the door's eyes): their first count is checked like a change,
        # since someone may have come in unseen before it.
        self._uncounted: set[str] = set()
        self.last_poll_at: int | None = None  # ms
        self.last_poll_seconds: float | None = None
        # Rooms the door saw being published: room -> (checks made, when the next is due).
        self._publishing: dict[str, tuple[int, float]] = {}
        self.publication_wakeup = Wakeup()
        # policy.guest_free_rooms: listed whatever the directory says. Aliases are looked up
        # at each poll (an alias may be moved to another room).
        self.guest_free_config = tuple(guest_free)
        self.guest_free = {r for r in guest_free if r.startswith("!")}
        self._aliases: dict[str, str] = {}

    async def load(self) -> None:
        self.listed = await self.rooms.listed()
        self._classified = dict.fromkeys(self.listed, True)
        self._members = await self.rooms.member_counts()

    async def scan(self) -> dict[str, int | None]:
        """One full paginated pass over the directory: room -> joined members (None if the
        homeserver gave no count)."""
        found: dict[str, int | None] = {}
        since: str | None = None
        for _ in range(100_000):  # bounded even if the server keeps handing out next_batch
            page = await self.hs.public_rooms_page(self.page_size, since)
            for entry in page.get("chunk") or []:
                if isinstance(entry, dict) and isinstance(entry.get("room_id"), str):
                    count = entry.get("num_joined_members")
                    valid = isinstance(count, int) and not isinstance(count, bool)
                    found[entry["room_id"]] = count if valid else None
            since = page.get("next_batch")
            if not since:
                break
        return found

    def is_guest_free(self, room_id: str) -> bool:
        return room_id in self.guest_free

    async def resolve_guest_free(self) -> set[str]:
        rooms = {r for r in self.guest_free_config if r.startswith("!")}
        for alias in (r for r in self.guest_free_config if r.startswith("#")):
            try:
                self._aliases[alias] = await self.hs.resolve_alias(alias)
            except HomeserverError as e:
                if e.transient:
                    raise
                # The room it named last stays guest-free until it names another.
                log.warning("policy.guest_free_rooms: %s does not resolve (%s)", alias, e.error)
            if alias in self._aliases:
                rooms.add(self._aliases[alias])
        return rooms

    async def poll_once(self) -> tuple[list[str], set[str]]:
        started = self.clock.monotonic()
        self.guest_free = await self.resolve_guest_free()
        scanned = await self.scan()
        for room_id in self.guest_free:
            scanned.setdefault(room_id, None)
        found = set(scanned)
        gone = self.listed - found
        now = self.clock.now_ms()
        newly = await self.rooms.apply(found - self.listed, gone, now)
        self.listed = found
        for room_id in gone:
            self._classified[room_id] = False
            self._members.pop(room_id, None)
        for room_id in found:
            self._classified[room_id] = True
        changed = await self._reconcile(scanned, set(newly), now)
        self.last_poll_at = now
        self.last_poll_seconds = self.clock.monotonic() - started
        metrics.DIRECTORY_POLL_SECONDS.observe(self.last_poll_seconds)
        metrics.LISTED_ROOMS.set(len(self.listed))
        if newly or gone or changed:
            log.info(
                "Directory: %d newly listed, %d unlisted, %d with other members than at the"
                " last poll",
                len(newly),
                len(gone),
                len(changed),
            )
        if newly or changed:
            self.inbox_wakeup.set()
        return newly, gone

    async def _reconcile(
        self, scanned: dict[str, int | None], newly: set[str], now: int
    ) -> list[str]:
        """Rooms whose member count moved since the last poll: someone came or went, whether
        guardbot saw it or the homeserver lost the event. Their counts are stored and each
        goes to the inbox for a re-check of its members. O(listed rooms), no request."""
        counts = {r: n for r, n in scanned.items() if n is not None and self._members.get(r) != n}
        # A newly listed room is swept for its listing anyway; a room without a count stored
        # yet (the first poll of this version) only gets one.
        changed = sorted(
            r for r in counts if r not in newly and (r in self._members or r in self._uncounted)
        )
        self._uncounted -= set(counts)
        await self.rooms.record_counts(counts, changed, now)
        self._members.update(counts)
        return changed

    async def poll_step(self) -> float:
        await self.poll_once()
        if self.recheck_every and self.clock.monotonic() >= self._recheck_at:
            now = self.clock.now_ms()
            await self.rooms.inbox.add([RecheckDue(now)], now)
            self._recheck_at = self.clock.monotonic() + self.recheck_every
            self.inbox_wakeup.set()
        return self.poll_interval

    def publishing(self, room_id: str) -> None:
        """The door was asked to let a room into the directory: look for it there shortly (the
        homeserver publishes it after it asked), not at the next poll."""
        if room_id not in self._publishing:
            self._publishing[room_id] = (0, self.clock.monotonic() + PUBLICATION_CHECKS[0])
            self.publication_wakeup.set()

    async def publication_step(self) -> float | None:
        """Check the rooms being published that are due; how long until the next check."""
        now = self.clock.monotonic()
        for room_id, (checks, due) in list(self._publishing.items()):
            if due > now:
                continue
            if await self.hs.directory_visibility(room_id) == "public":
                del self._publishing[room_id]
                await self._listed_now(room_id)
            elif checks + 1 < len(PUBLICATION_CHECKS):
                self._publishing[room_id] = (checks + 1, now + PUBLICATION_CHECKS[checks + 1])
            else:
                del self._publishing[room_id]  # refused, or slow: the poll has it either way
        if not self._publishing:
            return None
        return max(0.0, min(due for _, due in self._publishing.values()) - now)

    async def _listed_now(self, room_id: str) -> None:
        newly = await self.rooms.apply({room_id}, set(), self.clock.now_ms())
        self.listed.add(room_id)
        if room_id not in self._members:
            self._uncounted.add(room_id)
        self._classified[room_id] = True
        metrics.LISTED_ROOMS.set(len(self.listed))
        if newly:
            log.info("Directory: %s was published; enforcing now, not at the next poll", room_id)
            self.inbox_wakeup.set()

    async def classify(self, room_id: str) -> tuple[bool, RoomClassified | None]:
        """Listed? A room never seen is looked up at once rather than at the next poll; what
        that look-up learned comes back as a record for the decision to store."""
        if room_id in self.guest_free:
            return True, None
        known = self._classified.get(room_id)
        if known is not None:
            return known, None
        stored = await self.rooms.known(room_id)
        if stored is not None:
            self._classified[room_id] = stored
            return stored, None
        listed = await self.hs.directory_visibility(room_id) == "public"
        return listed, RoomClassified(room_id, listed, self.clock.now_ms())

    def remember(self, classified: RoomClassified) -> None:
        """A stored decision's look-up: the directory knows the room from now on."""
        self._classified[classified.room_id] = classified.listed
        if classified.listed:
            self.listed.add(classified.room_id)
            if classified.room_id not in self._members:
                self._uncounted.add(classified.room_id)
            metrics.LISTED_ROOMS.set(len(self.listed))
