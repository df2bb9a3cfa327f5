"""The door: the homeserver asks guardbot before a local join, an invite or a directory
publication (the Synapse module synapse-http-antispam POSTs each callback here).

A guest joining or invited into a listed room whose policy removes guests is refused with
guardbot's own words; everyone else passes. The door never holds a join hostage: no I/O for
users who cannot be guests, cached verdicts, a directory look-up only for a room never
classified, and a bound on every answer after which the join goes through (the event path,
kick or forbid, stays the backstop). A publication tells guardbot that a room is becoming
listed: it goes to the shared inbox (`RoomPublished`), so the process that acts, leader or not
the one asked, has the directory look for it at once instead of at the next poll.

Every refusal is an answer, not an action: nothing is stored, nothing is queued.

The module refuses the join on any error answer that is JSON, and only an answer that is not
JSON counts as a failure, for which its `fail_open` lets the join through. So a call with a
wrong token (homeserver.yaml's `authorization` is not `antispam.token`, e.g. after
`-g --new-tokens`) is answered in plain text: the server's joins then go on where the admin
chose fail_open (the event path still removes guests), and stay closed where they did not. It
is logged, counted and recorded for doctor, because nothing else would show it.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections import OrderedDict
from typing import Any

from aiohttp import web

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core import policy
from guardbot.core.clock import Clock
from guardbot.core.observations import DOOR_CALLBACKS, RoomPublished, is_guest_candidate
from guardbot.core.policy import RoomFacts, Verdict
from guardbot.db import InboxStore, SettingsStore
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.guard.intake import bearer_token
from guardbot.matrix.client import HomeserverError
from guardbot.matrix.errors import matrix_error

log = logging.getLogger(__name__)

PREFIX = "/_guardbot/antispam"
# A room the door looked up itself (never classified by the directory) is remembered this long:
# the door only reads, and the directory's own record wins once it has one.
LOOKUP_TTL_S = 60.0
LOOKUPS_KEPT = 10_000
# A wrong token is refused on every join on the server: say so once a minute, and record it
# for doctor at most every few seconds.
TOKEN_WARNING_EVERY_S = 60.0
TOKEN_RECORD_EVERY_S = 5.0
TOKEN_FIX = (
    "copy antispam.token from guardbot's config into homeserver.yaml's synapse_http_antispam"
    " entry (authorization) and restart the homeserver"
)


class Door:
    def __init__(
        self,
        *,
        token: str,
        domain: str,
        rooms: RoomFactSource,
        inbox: InboxStore,
        inbox_wakeup: Wakeup,
        guests: GuestOracle,
        settings: SettingsStore,
        clock: Clock,
        timeout: float,
        refusal: str,
    ) -> None:
        # "generate": not set up; no token the module could send matches an empty one.
        self._token = b"" if token == "generate" else token.encode()
        self.domain = domain
        self.rooms = rooms
        self.inbox = inbox
        self.inbox_wakeup = inbox_wakeup
        self.guests = guests
        self.settings = settings
        self.clock = clock
        self.timeout = timeout
        self.refusal = refusal
        self._lookups: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._seen = False  # the first call since start is recorded, for doctor
        self._token_refusals = 0  # since the last warning
        self._token_warned_at: float | None = None
        self._token_recorded_at: float | None = None

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post(PREFIX + "/{callback}", self.handle)

    async def _publishing(self, room_id: str) -> None:
        """Stored, not kept in this process's memory: a standby answers the door too."""
        now = self.clock.now_ms()
        try:
            await self.inbox.add([RoomPublished(room_id, now)], now)
        except Exception:
            log.exception("Could not record that %s is being published", room_id)
            return  # the directory's poll finds it
        log.info("The door heard that %s is being published", room_id)
        self.inbox_wakeup.set()

    # -- HTTP ------------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.Response:
        token = bearer_token(request)
        if token is None:
            return await self._refuse_token("missing token")
        if not self._token or not hmac.compare_digest(
            token.encode("utf-8", "surrogateescape"), self._token
        ):
            return await self._refuse_token("wrong token")
        try:
            body = json.loads(await request.read())
        except (ValueError, RecursionError):
            return matrix_error(400, "M_NOT_JSON", "Body is not JSON")
        if not isinstance(body, dict):
            return matrix_error(400, "M_BAD_JSON", "Body must be a JSON object")
        metrics.DOOR_LAST_CALL.set_to_current_time()
        callback = request.match_info["callback"]
        if callback == "ping":
            await self._record_seen("ping")
            return web.json_response({"id": body.get("id"), "status": "ok"})
        if not self._seen:
            await self._record_seen(callback)
        # A label per name the module may send would let a caller grow the metrics unbounded.
        label = callback if callback in DOOR_CALLBACKS else "other"
        with metrics.DOOR_SECONDS.labels(label).time():
            return await self._answer(callback, body)

    async def _refuse_token(self, what: str) -> web.Response:
        metrics.DOOR_TOKEN_REFUSED.labels(what.split()[0]).inc()
        now = self.clock.monotonic()
        self._token_refusals += 1
        if self._token_warned_at is None or now - self._token_warned_at >= TOKEN_WARNING_EVERY_S:
            log.error(
                "The door refused %d call(s) from the homeserver (%s): the door module's token"
                " is not guardbot's antispam.token, so joins, invites and publications go"
                " through unchecked where its fail_open is set, and are all refused where it"
                " is not. Fix: %s.",
                self._token_refusals,
                what,
                TOKEN_FIX,
            )
            self._token_warned_at, self._token_refusals = now, 0
        if self._token_recorded_at is None or now - self._token_recorded_at >= TOKEN_RECORD_EVERY_S:
            self._token_recorded_at = now
            self._seen = False  # the next good call is recorded again: doctor sees the fix
            try:
                await self.settings.door_token_refused(what, self.clock.now_ms())
            except Exception:
                log.exception("Could not record the door's refused token")
        # Plain text, not Matrix JSON: the module then counts the call as failed, and its
        # fail_open decides (see the module docstring).
        return web.Response(
            status=401, text=f"guardbot refused this antispam token ({what}): {TOKEN_FIX}\n"
        )

    async def _answer(self, callback: str, body: dict[str, Any]) -> web.Response:
        match callback:
            case "user_may_join_room":
                user, room = body.get("user"), body.get("room")
            case "user_may_invite":
                user, room = body.get("invitee"), body.get("room_id")
            case "user_may_publish_room":
                room = body.get("room_id")
                if isinstance(room, str):
                    await self._publishing(room)
                metrics.DOOR_ANSWERS.labels(callback, "allowed").inc()
                return web.json_response({})
            case _:
                # A callback enabled in the module but not guardbot's business: refusing it
                # (any errcode) would refuse it for everyone on the server.
                log.warning("The door was asked %s, which guardbot does not answer", callback)
                metrics.DOOR_ANSWERS.labels("other", "allowed").inc()
                return web.json_response({})
        if not isinstance(user, str) or not isinstance(room, str):
            return matrix_error(400, "M_BAD_JSON", "user and room must be strings")
        try:
            refuse = await asyncio.wait_for(self.refuses(user, room), timeout=self.timeout)
        except TimeoutError:
            log.warning("The door let %s into %s: no answer within %ss", user, room, self.timeout)
            metrics.DOOR_ANSWERS.labels(callback, "late").inc()
            return web.json_response({})
        except HomeserverError as e:
            log.warning("The door let %s into %s: cannot tell (%s)", user, room, e)
            metrics.DOOR_ANSWERS.labels(callback, "unsure").inc()
            return web.json_response({})
        if not refuse:
            metrics.DOOR_ANSWERS.labels(callback, "allowed").inc()
            return web.json_response({})
        log.info("The door refused guest %s in %s (%s)", user, room, callback)
        metrics.DOOR_ANSWERS.labels(callback, "refused").inc()
        return matrix_error(403, "M_FORBIDDEN", self.refusal)

    # -- the decision ----------------------------------------------------------------------
    async def refuses(self, user_id: str, room_id: str) -> bool:
        """Is this a guest, and the room one that keeps guests out?"""
        link_only = self.guests.link_only
        if not is_guest_candidate(user_id, self.domain, False, named_guests_too=link_only):
            return False  # no numeric local ID: never a guest, and no I/O to know it
        room = await self._room(room_id)
        if not policy.removes_guests(room):
            return False
        # A join: the hint is absent at the door; without admin rights the verdict is unknown.
        verdict = await self.guests.verdict(user_id, kind_guest=False, new_join=True)
        if verdict is Verdict.GUEST:
            # A cached "guest" may be minutes old and the guest upgraded since: ask again
            # unless the answer is from just now (one look-up per refusal, none otherwise).
            verdict = await self.guests.verdict(
                user_id, kind_guest=False, new_join=True, fresh=True
            )
        return policy.refuse_at_the_door(room, verdict)

    async def _room(self, room_id: str) -> RoomFacts:
        cached = self._lookups.get(room_id)
        if cached is not None and self.clock.monotonic() - cached[1] < LOOKUP_TTL_S:
            return self.rooms.of_known(room_id, cached[0])
        facts, classified = await self.rooms.room(room_id)
        if classified is not None:
            self._lookups[room_id] = (classified.listed, self.clock.monotonic())
            while len(self._lookups) > LOOKUPS_KEPT:
                self._lookups.popitem(last=False)
        return facts

    async def _record_seen(self, what: str) -> None:
        try:
            await self.settings.door_seen(what, self.clock.now_ms())
            self._seen = True
        except Exception:
            log.exception("Could not record the door's call")
