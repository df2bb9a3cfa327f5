"""Registering a named guest: the homeserver's /register with a derived password, its
user-interactive auth passed through untouched, and a guest's rooms carried over (decided and
carried out on the one path: `GuestNamed` is stored with the account's row, the executor does
the `CarryOver`, and the registration waits a while to tell its client what came along).

guardbot adds the password and nothing else: the flows (captcha, terms, registration token,
dummy) and every refusal are the homeserver's own, so a client drives this exactly like
/register.

A row for the account is written before each step that can create it (one that carries `auth`:
the homeserver answers a first step without it with its flows, always), so an account created
just before a crash is found again (see NamedGuestStore.begin). A stranger naming someone else's
account leaves nothing behind: "in use" on a row this very step made means the name was
taken before, and the row goes. Rows waiting to be confirmed are capped.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from guardbot.core.clock import Clock
from guardbot.core.observations import GuestNamed, NamedGuestRegistered, Observation
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.named_guests.carrier import NamedGuestCarrier
from guardbot.named_guests.passwords import KeyRing

log = logging.getLogger(__name__)

# What the homeserver would accept as a localpart (Synapse's rule); anything else is sent on
# only to get the homeserver's own refusal, without recording a row for it.
_LOCALPART = re.compile(r"[a-z0-9._=/+-]+")
# Registrations under way (or cut off) at once; past it, new ones wait a minute.
MAX_UNCONFIRMED = 1000
# When an unconfirmed row is looked at: long after the homeserver has answered its step, soon
# enough that only an account made by that step can be found (Accounts.resolve_unconfirmed).
UNCONFIRMED_CHECK_MS = 10 * 60 * 1000
# How long a registration waits for its carry-over to tell the client which rooms came along;
# past it, the answer says the carry-over is still under way (it finishes regardless).
CARRY_OVER_WAIT_S = 20.0


@dataclass(frozen=True)
class RegisterRequest:
    username: str
    auth: dict[str, Any] | None = None
    guest_access_token: str | None = None
    initial_device_display_name: str | None = None
    # The person's own address (named_guests/ratelimit.py's ClientAddress), forwarded to the
    # homeserver so its per-address registration limit counts them, not guardbot.
    client_address: str | None = None


@dataclass
class ApiAnswer:
    """What to answer the client: a status and a body (Matrix JSON)."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


def homeserver_answer(e: HomeserverError) -> ApiAnswer:
    """The homeserver's refusal as it gave it; an unreachable one as a 502."""
    if e.status == 0:
        return ApiAnswer(502, {"errcode": "M_UNKNOWN", "error": "The homeserver is unreachable"})
    body = dict(e.body) or {"errcode": e.errcode, "error": e.error}
    return ApiAnswer(e.status, body)


class SignUp:
    def __init__(
        self,
        client: Homeserver,
        store: NamedGuestStore,
        keys: KeyRing,
        domain: str,
        first_after_ms: int,
        on_registered: Callable[[], None],
        carrier: NamedGuestCarrier,
        clock: Clock,
    ) -> None:
        self.carrier = carrier
        self.clock = clock
        self.client = client
        self.store = store
        self.keys = keys
        self.domain = domain
        self.first_after_ms = first_after_ms
        self.on_registered = on_registered

    async def register(self, req: RegisterRequest) -> ApiAnswer:
        # The homeserver lowercases the username; the password must be derived for the user
        # ID it will really create.
        localpart = req.username.lower()
        user_id = f"@{localpart}:{self.domain}"
        guest_token = req.guest_access_token
        guest_id: str | None = None
        if guest_token is not None:
            refused, guest_id = await self._check_guest(guest_token)
            if refused:
                return refused
        recorded = req.auth is not None and bool(_LOCALPART.fullmatch(localpart))
        made_row = False
        if recorded:
            if await self.store.unconfirmed() >= MAX_UNCONFIRMED and not await self.store.get(
                user_id
            ):
                log.warning("%d registrations under way: asking a new one to wait", MAX_UNCONFIRMED)
                return ApiAnswer(
                    429,
                    {
                        "errcode": "M_LIMIT_EXCEEDED",
                        "error": "Too many registrations under way; try again in a minute",
                        "retry_after_ms": 60_000,
                    },
                )
            now = self.clock.now_ms()
            made_row = await self.store.begin(
                user_id, self.keys.current, now, now + UNCONFIRMED_CHECK_MS
            )
        body: dict[str, Any] = {"username": localpart, "password": self.keys.password(user_id)}
        if req.auth is not None:
            body["auth"] = req.auth
        if req.initial_device_display_name is not None:
            body["initial_device_display_name"] = req.initial_device_display_name
        try:
            data = await self.client.register(body, on_behalf_of=req.client_address)
        except HomeserverError as e:
            taken_before = e.errcode == "M_USER_IN_USE" and made_row
            if recorded and (_definitive(e) or taken_before):
                await self.store.forget(user_id)
            return homeserver_answer(e)
        if data.get("user_id") != user_id:
            # Not the account the password was derived for: guardbot could never log in to it.
            log.error(
                "Homeserver registered %r for %s; not tracking it", data.get("user_id"), user_id
            )
            await self.store.forget(user_id)
            return ApiAnswer(200, data)
        now = self.clock.now_ms()
        answer = dict(data)
        carried = None
        if guest_token is not None and guest_id is not None:
            token = str(data.get("access_token", ""))
            carried = self.carrier.expect_carry_over(user_id, token)
        then: list[Observation] = [NamedGuestRegistered(user_id, now)]
        if guest_id and carried is not None:
            then.append(GuestNamed(user_id, guest_id, now))
        try:
            await self.store.confirm(
                user_id, self.keys.current, now, now + self.first_after_ms, then=then
            )
            self.on_registered()
            log.info("Registered named guest %s", user_id)
            if carried is not None:
                answer.update(await self._carried(carried))
        finally:
            if carried is not None:
                self.carrier.forget_carry_over(user_id)
        return ApiAnswer(200, answer)

    async def _carried(
        self, carried: asyncio.Future[tuple[list[str], list[str]]]
    ) -> dict[str, Any]:
        try:
            moved, kept = await asyncio.wait_for(asyncio.shield(carried), CARRY_OVER_WAIT_S)
        except TimeoutError:
            log.warning("Carrying a guest's rooms over takes long; answering before it is done")
            return {"rooms_carried_over": [], "rooms_not_carried_over": [], "carry_over": "pending"}
        return {"rooms_carried_over": moved, "rooms_not_carried_over": kept}

    async def _check_guest(self, guest_token: str) -> tuple[ApiAnswer | None, str | None]:
        """(a refusal, or None) and the guest's user ID."""
        try:
            who = await self.client.whoami(guest_token)
        except HomeserverError as e:
            if e.status in (401, 403):
                return _forbidden("guest_access_token is not a valid access token"), None
            return homeserver_answer(e), None
        if not who.get("is_guest"):
            return _forbidden("guest_access_token does not belong to a guest"), None
        guest_id = who.get("user_id")
        return None, guest_id if isinstance(guest_id, str) else None


def _forbidden(error: str) -> ApiAnswer:
    return ApiAnswer(403, {"errcode": "M_FORBIDDEN", "error": error})


def _definitive(e: HomeserverError) -> bool:
    """A refusal after which no account exists for this attempt. Not 401 (user-interactive
    auth goes on) and not "in use" (it may be this very account, made before a crash)."""
    if e.status == 0 or e.status >= 500 or e.status in (401, 429):
        return False
    return e.errcode != "M_USER_IN_USE"
