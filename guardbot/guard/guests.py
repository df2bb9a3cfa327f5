"""Is this user a guest? The admin API knows; the member event's `kind` only hints.

`kind: guest` vanishes from a guest's member event when it renames, and stays on an upgraded
user's old events, so it never decides a removal on its own for local users while guardbot has
admin rights. Verdicts are cached: "not a guest" is final (a full account never becomes a guest
again), "guest" only briefly, since a guest can be upgraded at any time without an event.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

from guardbot.core.clock import Clock
from guardbot.core.observations import (
    MAX_RENAMES_FOLLOWED,
    join_began_as_guest,
    localpart_is_numeric,
    replaced_event,
)
from guardbot.core.policy import Verdict
from guardbot.db.named_guest_store import UNCONFIRMED, NamedGuestStore
from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger(__name__)

GUEST_TTL = 30.0
# A "guest" answer this young still counts as fresh: the check right before a kick then reuses
# the look-up the decision made milliseconds earlier instead of asking the homeserver again.
FRESH_FOR = 1.0
# Canonical numeric localparts below this are kept as bits (2**27 bits: 16 MiB at most). The
# homeserver numbers its guests 1, 2, 3... so real IDs stay far below it.
BITMAP_LIMIT = 1 << 27


class VerdictCache:
    """The admin API's answers for local users, small enough for millions of them.

    "Not a guest" is final and most answers are that, so for the numeric IDs the homeserver
    gives guests (no leading zero) it is one bit at that number: 1M users in 125 kB, where an
    OrderedDict of user ID -> (verdict, expiry) took ~240 B a user (docs/benchmarks.md). Any
    other ID goes into a bounded set. "Guest" answers expire and are few: ID -> when fetched.
    """

    def __init__(self, domain: str, max_entries: int, clock: Clock) -> None:
        self._clock = clock
        self._suffix = ":" + domain
        self._max = max_entries
        self._bits = bytearray()
        self._bits_set = 0
        self._other_not_guests: OrderedDict[str, None] = OrderedDict()
        self._guests: OrderedDict[str, float] = OrderedDict()  # user ID -> monotonic fetch time

    def __len__(self) -> int:
        return self._bits_set + len(self._other_not_guests) + len(self._guests)

    def _number(self, user_id: str) -> int | None:
        """The bit for a local user with a canonical numeric localpart; None for anyone else."""
        if not user_id.endswith(self._suffix):
            return None
        localpart = user_id[1 : -len(self._suffix)]
        # At most 9 digits: int() of a long digit string is slow (and refused past 4300).
        if not (0 < len(localpart) <= 9 and localpart.isascii() and localpart.isdigit()):
            return None
        if localpart[0] == "0":
            return None  # "@07" is not "@7": only one spelling may own a bit
        number = int(localpart)
        return number if number < BITMAP_LIMIT else None

    def _bit(self, number: int) -> bool:
        byte = number >> 3
        return byte < len(self._bits) and bool(self._bits[byte] >> (number & 7) & 1)

    def get(self, user_id: str, *, fresh: bool = False) -> bool | None:
        """True (a guest), False (not one) or None (ask the homeserver). With `fresh`, only a
        "guest" answer under FRESH_FOR seconds old counts."""
        if not fresh:
            number = self._number(user_id)
            known = self._bit(number) if number is not None else user_id in self._other_not_guests
            if known:
                return False
        fetched = self._guests.get(user_id)
        if fetched is None:
            return None
        age = self._clock.monotonic() - fetched
        if age >= GUEST_TTL:
            del self._guests[user_id]
            return None
        if fresh and age >= FRESH_FOR:
            return None
        return True

    def put(self, user_id: str, is_guest: bool) -> None:
        self.discard(user_id)
        if is_guest:
            self._guests[user_id] = self._clock.monotonic()
            while len(self._guests) > self._max:
                self._guests.popitem(last=False)
            return
        number = self._number(user_id)
        if number is None:
            self._other_not_guests[user_id] = None
            while len(self._other_not_guests) > self._max:
                self._other_not_guests.popitem(last=False)
            return
        byte = number >> 3
        if byte >= len(self._bits):
            self._bits.extend(bytes(byte + 1 - len(self._bits)))
        self._bits[byte] |= 1 << (number & 7)
        self._bits_set += 1

    def discard(self, user_id: str) -> None:
        self._guests.pop(user_id, None)
        self._other_not_guests.pop(user_id, None)
        number = self._number(user_id)
        if number is not None and self._bit(number):
            self._bits[number >> 3] &= ~(1 << (number & 7)) & 0xFF
            self._bits_set -= 1


class GuestOracle:
    def __init__(
        self,
        hs: Homeserver,
        domain: str,
        exempt: set[str],
        clock: Clock,
        *,
        max_entries: int = 1_000_000,
        admin_recheck: float = 60.0,
        named_guests: NamedGuestStore | None = None,
    ) -> None:
        self.hs = hs
        self.domain = domain
        self.exempt = exempt | {hs.bot_user_id}
        self.admin = False  # see set_admin; without admin rights, hints are all there is
        self._cache = VerdictCache(domain, max_entries, clock)
        self.admin_recheck = admin_recheck  # seconds between two looks at the admin rights
        # policy.named_guests: link_only: a named guest without a password counts as a guest.
        self.named_guests = named_guests
        self.link_only = named_guests is not None

    def set_admin(self, admin: bool) -> bool:
        """Whether guardbot may ask the admin API; True if that changed. Rights can be given or
        taken while guardbot runs (the README's steps grant them after the start)."""
        changed, self.admin = self.admin != admin, admin
        if changed and admin:
            log.info("guardbot is now a server admin: guest status comes from the admin API")
        elif changed:
            log.warning(
                "guardbot is no longer a server admin: it acts only on new joins that say"
                " kind: guest until it is one again"
            )
        return changed

    async def check_admin(self) -> float:
        """The admin rights as the homeserver sees them now; when to look again."""
        self.set_admin(await self.hs.is_server_admin())
        return self.admin_recheck

    def invalidate(self, user_id: str) -> None:
        self._cache.discard(user_id)

    def _remember(self, user_id: str, is_guest: bool) -> None:
        self._cache.put(user_id, is_guest)

    async def member_verdict(
        self, room_id: str, user_id: str, event: dict[str, Any] | None, *, fresh: bool
    ) -> Verdict:
        """The verdict on a member from their current member event (the whole event): for
        another server's user, what the join that began their membership said."""
        content = event.get("content") if isinstance(event, dict) else None
        content = content if isinstance(content, dict) else {}
        membership = content.get("membership")
        joined_as_guest = None
        if not self.is_local(user_id) and membership == "join" and isinstance(event, dict):
            joined_as_guest = await self.joined_as_guest(room_id, event)
        return await self.verdict(
            user_id,
            kind_guest=content.get("kind") == "guest",
            new_join=membership == "join",
            fresh=fresh,
            joined_as_guest=joined_as_guest,
        )

    async def joined_as_guest(self, room_id: str, event: dict[str, Any]) -> bool:
        """Whether the join that began this member's membership said `kind: guest`, looking
        back through their renames (core/observations.py `join_began_as_guest`)."""
        for _ in range(MAX_RENAMES_FOLLOWED):
            began = join_began_as_guest(event)
            if began is not None:
                return began
            earlier = replaced_event(event)
            if earlier is None:
                return False
            try:
                event = await self.hs.room_event(room_id, earlier)
            except HomeserverError as e:
                if e.status in (403, 404):
                    return False  # not visible to guardbot: not sure
                raise
        who = event.get("state_key")
        log.info("Not sure whether %s joined %s as a guest: too many renames", who, room_id)
        return False

    async def _named_guest_verdict(self, user_id: str, fresh: bool) -> Verdict:
        """Under link_only, a named guest still on guardbot's derived password is a guest."""
        if self.named_guests is None:
            return Verdict.NOT_GUEST
        cached = self._cache.get(user_id, fresh=fresh)
        if cached is not None:
            return Verdict.GUEST if cached else Verdict.NOT_GUEST
        row = await self.named_guests.get(user_id)
        passwordless = row is not None and not row.password_set and row.state != UNCONFIRMED
        # A named guest who is done (password set, or "stop" said) is not cached as "not a
        # guest" for ever: only an account that was never one is.
        if passwordless or row is None:
            self._remember(user_id, passwordless)
        return Verdict.GUEST if passwordless else Verdict.NOT_GUEST

    def is_local(self, user_id: str) -> bool:
        return user_id.endswith(":" + self.domain)

    async def verdict(
        self,
        user_id: str,
        *,
        kind_guest: bool,
        new_join: bool,
        fresh: bool = False,
        joined_as_guest: bool | None = None,
    ) -> Verdict:
        """GUEST only when guardbot is sure. `fresh` (right before a kick) asks the homeserver
        again unless a "guest" answer is under FRESH_FOR seconds old. For another server's
        user, `joined_as_guest` (when looked up) says what their membership's join said."""
        if user_id in self.exempt:
            return Verdict.NOT_GUEST
        if not self.is_local(user_id):
            # Another server's user: its own `kind: guest` on the join that began the current
            # membership is all the evidence there can be.
            if joined_as_guest is not None:
                return Verdict.GUEST if joined_as_guest else Verdict.UNKNOWN
            return Verdict.GUEST if kind_guest and new_join else Verdict.UNKNOWN
        if not localpart_is_numeric(user_id):
            # The homeserver only gives guests numeric IDs; a named guest has a name.
            return await self._named_guest_verdict(user_id, fresh)
        if not self.admin:
            if kind_guest and new_join:
                return Verdict.GUEST
            return Verdict.UNKNOWN
        cached = self._cache.get(user_id, fresh=fresh)
        if cached is not None:
            return Verdict.GUEST if cached else Verdict.NOT_GUEST
        try:
            info = await self.hs.admin_user(user_id)
        except HomeserverError as e:
            if e.status != 403:
                raise
            self.set_admin(False)  # taken away: the hint is all there is again
            return await self.verdict(user_id, kind_guest=kind_guest, new_join=new_join)
        if info is None:
            return Verdict.UNKNOWN
        # A deactivated account is gone already; an admin is never removed.
        is_guest = (
            bool(info.get("is_guest")) and not info.get("admin") and not info.get("deactivated")
        )
        self._remember(user_id, is_guest)
        return Verdict.GUEST if is_guest else Verdict.NOT_GUEST
