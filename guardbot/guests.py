"""Is this user a guest? The admin API knows; the member event's `kind` only hints.

`kind: guest` vanishes from a guest's member event when it renames, and stays on an upgraded
user's old events, so it never decides a removal on its own for local users while guardbot has
admin rights. Verdicts are cached: "not a guest" is final (a full account never becomes a guest
again), "guest" only briefly, since a guest can be upgraded at any time without an event.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict

from .homeserver import Homeserver
from .policy import Verdict
from .triage import localpart_is_numeric

log = logging.getLogger("guardbot.guests")

GUEST_TTL = 30.0


class GuestOracle:
    def __init__(
        self,
        hs: Homeserver,
        domain: str,
        exempt: set[str],
        *,
        max_entries: int = 1_000_000,
    ) -> None:
        self.hs = hs
        self.domain = domain
        self.exempt = exempt | {hs.bot_user_id}
        self.admin = False  # set by the app once it knows; without it, hints are all we have
        self._max = max_entries
        # user_id -> monotonic expiry for guests; float("inf") for known non-guests
        self._guest_until: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self.lookups = 0

    def invalidate(self, user_id: str) -> None:
        self._guest_until.pop(user_id, None)

    def _cached(self, user_id: str) -> bool | None:
        entry = self._guest_until.get(user_id)
        if entry is None:
            return None
        is_guest, until = entry
        if until < time.monotonic():
            del self._guest_until[user_id]
            return None
        return is_guest

    def _remember(self, user_id: str, is_guest: bool) -> None:
        until = time.monotonic() + GUEST_TTL if is_guest else float("inf")
        self._guest_until[user_id] = (is_guest, until)
        self._guest_until.move_to_end(user_id)
        while len(self._guest_until) > self._max:
            self._guest_until.popitem(last=False)

    async def verdict(
        self, user_id: str, *, kind_guest: bool, new_join: bool, fresh: bool = False
    ) -> Verdict:
        """GUEST only when guardbot is sure. `fresh` skips the cache (used right before a kick)."""
        if user_id in self.exempt:
            return Verdict.NOT_GUEST
        if not user_id.endswith(":" + self.domain):
            # Another server's user: its own `kind: guest` on a new join is all the evidence.
            return Verdict.GUEST if kind_guest and new_join else Verdict.UNKNOWN
        if not localpart_is_numeric(user_id):
            return Verdict.NOT_GUEST  # the homeserver only gives guests numeric IDs
        if not self.admin:
            if kind_guest and new_join:
                return Verdict.GUEST
            return Verdict.UNKNOWN
        if not fresh:
            cached = self._cached(user_id)
            if cached is not None:
                return Verdict.GUEST if cached else Verdict.NOT_GUEST
        self.lookups += 1
        info = await self.hs.admin_user(user_id)
        if info is None:
            return Verdict.UNKNOWN
        # A deactivated account is gone already; an admin is never removed.
        is_guest = (
            bool(info.get("is_guest")) and not info.get("admin") and not info.get("deactivated")
        )
        self._remember(user_id, is_guest)
        return Verdict.GUEST if is_guest else Verdict.NOT_GUEST
