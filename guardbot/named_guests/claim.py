"""The claim page, /_guardbot/claim/<token>: where a named guest sets a password from a link.

The token in the URL is the credential, so no log line here ever contains the path, and no
exception leaves these handlers for the generic error middleware (which logs paths).
"""

from __future__ import annotations

import logging

from aiohttp import web
from yarl import URL

from guardbot.core.clock import Clock
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.matrix.client import HomeserverError
from guardbot.named_guests import page
from guardbot.named_guests.accounts import AccountError, Accounts
from guardbot.named_guests.ratelimit import ClientAddress, RateLimiter, forwardable
from guardbot.named_guests.tokens import (
    csrf_ok,
    csrf_token,
    hash_token,
    new_csrf_nonce,
    plausible_token,
)

log = logging.getLogger(__name__)

COOKIE = "guardbot_claim_csrf"
MAX_PASSWORD = 512  # the homeserver refuses longer ones; say so before asking it


class ClaimPage:
    def __init__(
        self,
        store: NamedGuestStore,
        accounts: Accounts,
        csrf_key: bytes,
        public_url: str,
        limiter: RateLimiter,
        client_address: ClientAddress,
        clock: Clock,
    ) -> None:
        self.clock = clock
        self.store = store
        self.accounts = accounts
        self.csrf_key = csrf_key
        base = URL(public_url)
        self.cookie_path = base.path.rstrip("/") + "/_guardbot/claim/"
        self.secure_cookie = base.scheme == "https"
        self.limiter = limiter
        self.client_address = client_address

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_guardbot/claim/{token}", self.get)
        app.router.add_post("/_guardbot/claim/{token}", self.post)

    async def _user(self, request: web.Request) -> tuple[str, str] | None:
        token = request.match_info["token"]
        if not plausible_token(token):
            return None
        token_hash = hash_token(token)
        user_id = await self.store.claim_user(token_hash, self.clock.now_ms())
        return (user_id, token_hash) if user_id else None

    def _form(
        self, user_id: str, token_hash: str, problem: str | None = None, status: int = 200
    ) -> web.Response:
        nonce = new_csrf_nonce()
        resp = page.respond(
            "Set a password",
            page.form(user_id, csrf_token(self.csrf_key, nonce, token_hash), problem),
            status,
        )
        resp.set_cookie(
            COOKIE,
            nonce,
            path=self.cookie_path,
            httponly=True,
            samesite="Strict",
            secure=self.secure_cookie,
            max_age=3600,
        )
        return resp

    def _client(self, request: web.Request) -> str:
        return self.client_address(request.remote, request.headers.get("X-Forwarded-For"))

    def _invalid(self, client: str) -> web.Response:
        """A link that opens nothing: charged to the client (guessing links costs), so a
        client that has a real link is never held back by someone else's guesses."""
        wait_ms = self.limiter.waiting(client) or self.limiter.hit(client)
        if wait_ms is not None:
            return _slow_down(wait_ms)
        return page.respond("Link not valid", page.invalid_link(), 404)

    async def get(self, request: web.Request) -> web.Response:
        try:
            found = await self._user(request)
            if found is None:
                return self._invalid(self._client(request))
            return self._form(*found)
        except Exception:
            log.exception("Claim page failed")
            return page.respond("Error", page.message("Something went wrong", "Try again."), 500)

    async def post(self, request: web.Request) -> web.Response:
        try:
            return await self._post(request)
        except Exception:
            log.exception("Claim page submission failed")
            return page.respond("Error", page.message("Something went wrong", "Try again."), 500)

    async def _post(self, request: web.Request) -> web.Response:
        found = await self._user(request)
        if found is None:
            return self._invalid(self._client(request))
        user_id, token_hash = found
        # Attempts on a real link count against that link, wherever they come from.
        wait_ms = self.limiter.hit("link " + token_hash)
        if wait_ms is not None:
            return _slow_down(wait_ms)
        try:
            form = await request.post()
        except web.HTTPRequestEntityTooLarge:
            return page.respond("Too large", page.message("Too large", "Try again."), 413)
        except Exception:  # a broken form encoding: the sender's fault, not ours
            text = "The form could not be read. Open the link again."
            return page.respond("Bad request", page.message("Bad request", text), 400)
        csrf = form.get("csrf")
        if not csrf_ok(
            self.csrf_key,
            request.cookies.get(COOKIE),
            token_hash,
            csrf if isinstance(csrf, str) else None,
        ):
            return self._form(
                user_id, token_hash, "This form had expired. Please enter the password again.", 403
            )
        new, again = form.get("new_password"), form.get("confirm_password")
        if not isinstance(new, str) or not new:
            return self._form(user_id, token_hash, "Enter a password.", 400)
        if new != again:
            return self._form(user_id, token_hash, "The two passwords are not the same.", 400)
        if len(new) > MAX_PASSWORD:
            return self._form(user_id, token_hash, f"Use at most {MAX_PASSWORD} characters.", 400)
        try:
            client = forwardable(self._client(request))
            await self.accounts.set_password(user_id, new, None, client)
        except AccountError as e:
            if e.errcode == "M_WEAK_PASSWORD":
                return self._form(user_id, token_hash, e.error + ".", e.status)
            return page.respond(
                "Cannot set a password", page.message("Not possible", e.error), e.status
            )
        except HomeserverError as e:
            if e.status == 429:
                wait = f" in {e.retry_after_ms // 1000 + 1} s" if e.retry_after_ms else " soon"
                log.warning("Claim page: the homeserver rate-limited guardbot (%s)", e)
                text = (
                    "The homeserver is limiting how often guardbot may log in right now."
                    f" Your password is not set yet: try again{wait}."
                )
                return self._form(user_id, token_hash, text, 503)
            if e.status == 0 or e.status >= 500:
                log.warning("Claim page: the homeserver could not set the password (%s)", e)
                text = "The homeserver could not be reached or failed. Try again in a minute."
                return self._form(user_id, token_hash, text, 503)
            # The homeserver's own reason, e.g. its password policy ("too short").
            return self._form(user_id, token_hash, e.error or e.errcode, e.status)
        return page.respond("Password set", page.success(user_id))


def _slow_down(wait_ms: int) -> web.Response:
    seconds = max(1, -(-wait_ms // 1000))
    text = f"Too many attempts. Try again in {seconds} seconds."
    return page.respond(
        "Slow down", page.message("Slow down", text), 429, {"Retry-After": str(seconds)}
    )
