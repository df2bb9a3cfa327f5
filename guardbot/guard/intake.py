"""The appservice API: transactions from the homeserver, and its ping.

Written here rather than taken from mautrix's AppService: that one keeps transaction IDs only
in memory and answers the homeserver before its handlers finish, so a crash loses events. Here a
transaction is answered only once its observations are durably in the inbox.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Collection
from typing import Any

from aiohttp import web

from guardbot import metrics
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.observations import MalformedEvent, Observation, triage
from guardbot.db import InboxStore
from guardbot.matrix.errors import matrix_error

log = logging.getLogger(__name__)


LOGGED_MALFORMED = 3  # per transaction; the rest are counted


def _event_id(event: Any) -> str:
    event_id = event.get("event_id") if isinstance(event, dict) else None
    return repr(event_id[:100]) if isinstance(event_id, str) else "(no event_id)"


def parse_events(
    body: Any,
    domain: str,
    bot_user_id: str,
    conversations: Collection[str] = (),
    *,
    named_guests_too: bool = False,
) -> list[Observation]:
    """The observations in a transaction body; one bad event never costs the others."""
    events = body.get("events")
    observations: list[Observation] = []
    malformed = 0
    for event in events:
        try:
            obs = triage(
                event, domain, bot_user_id, conversations, named_guests_too=named_guests_too
            )
        except MalformedEvent as e:
            malformed += 1
            if malformed <= LOGGED_MALFORMED:
                log.warning("Skipping malformed event %s: %s", _event_id(event), e)
            continue
        if obs is not None:
            observations.append(obs)
    if malformed:
        # A line per bad event let one body of junk block the event loop for minutes.
        if malformed > LOGGED_MALFORMED:
            log.warning("Skipped %d malformed events in one transaction", malformed)
        metrics.EVENTS_MALFORMED.inc(malformed)
    metrics.EVENTS_RECEIVED.inc(len(events))
    metrics.EVENTS_IGNORED.inc(len(events) - len(observations))
    return observations


def bearer_token(request: web.Request, *, query: bool = False) -> str | None:
    """The Authorization header's bearer token. `query`: also ?access_token=, which older
    homeservers send to an appservice; nowhere else, where a token in a URL ends up in
    proxy logs and browser history."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[len("Bearer ") :]
    return request.query.get("access_token") if query else None


class AppserviceAPI:
    def __init__(
        self,
        hs_token: str,
        domain: str,
        bot_user_id: str,
        inbox: InboxStore,
        inbox_wakeup: Wakeup,
        conversations: Collection[str],
        clock: Clock,
        *,
        named_guests_too: bool = False,
    ) -> None:
        self._hs_token = hs_token.encode()
        self.named_guests_too = named_guests_too  # policy.named_guests: link_only
        self.domain = domain
        self.bot_user_id = bot_user_id
        self.inbox = inbox
        self.inbox_wakeup = inbox_wakeup
        self.conversations = conversations  # kept current by its owner (Conversations)
        self.clock = clock

    def add_routes(self, app: web.Application) -> None:
        # Any characters but "/": aiohttp's default pattern also refuses "{" and "}", and a
        # refused transaction is resent for ever.
        app.router.add_put("/_matrix/app/v1/transactions/{txn_id:[^/]+}", self.transaction)
        app.router.add_post("/_matrix/app/v1/ping", self.ping)
        app.router.add_get("/_matrix/app/v1/users/{user_id}", self.not_ours)
        app.router.add_get("/_matrix/app/v1/rooms/{alias}", self.not_ours)

    def _refuse(self, request: web.Request) -> web.Response | None:
        token = bearer_token(request, query=True)
        if token is None:
            return matrix_error(401, "M_UNAUTHORIZED", "Missing homeserver token")
        # surrogateescape: header bytes that are not UTF-8 reach us as lone surrogates, and
        # must be refused like any wrong token, not raise.
        if not hmac.compare_digest(token.encode("utf-8", "surrogateescape"), self._hs_token):
            return matrix_error(403, "M_FORBIDDEN", "Wrong homeserver token")
        return None

    async def transaction(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        if refused:
            return refused
        with metrics.TRANSACTION_SECONDS.time():
            return await self._transaction(request)

    async def _transaction(self, request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return matrix_error(400, "M_NOT_JSON", "Body is not JSON")
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            return matrix_error(400, "M_BAD_JSON", "Body must be an object with an events list")
        observations = parse_events(
            body,
            self.domain,
            self.bot_user_id,
            self.conversations,
            named_guests_too=self.named_guests_too,
        )
        if not observations:
            # Nothing to keep, so nothing a redelivery could add twice: answer without a
            # database round trip. Most transactions are chat from rooms a guest sits in, all
            # dropped at triage, and the round trip cost 3-4x the parsing (docs/benchmarks.md).
            return web.json_response({})
        txn_id = request.match_info["txn_id"]
        if not txn_id.isprintable():
            # Kept escaped (NUL is no PostgreSQL text); an ID that happens to look the same is
            # told apart by the body hash, as after a homeserver reset.
            txn_id = txn_id.encode("unicode_escape").decode("ascii")
        digest = hashlib.sha256(raw).hexdigest()
        now = self.clock.now_ms()
        if await self.inbox.record_transaction(txn_id, digest, observations, now):
            self.inbox_wakeup.set()
        else:
            metrics.TRANSACTIONS_REPEATED.inc()
            log.debug("Transaction %s already handled", txn_id)
        return web.json_response({})

    async def ping(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        return refused or web.json_response({})

    async def not_ours(self, request: web.Request) -> web.Response:
        refused = self._refuse(request)
        return refused or matrix_error(404, "M_NOT_FOUND", "guardbot creates no users or rooms")
