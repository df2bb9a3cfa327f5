"""The named-guest HTTP API under /_guardbot/v1/pwlu/: register, status, password.

Clients call it like the client-server API: JSON bodies, `Authorization: Bearer` with the
user's own access token, Matrix error JSON for every refusal, CORS open to any origin (web
clients live on other origins; every authenticated call carries its token explicitly).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from guardbot.guard.intake import bearer_token
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.matrix.errors import matrix_error
from guardbot.named_guests.accounts import AccountError, Accounts
from guardbot.named_guests.ratelimit import ClientAddress, RateLimiter, forwardable
from guardbot.named_guests.signup import RegisterRequest, SignUp, homeserver_answer

log = logging.getLogger(__name__)

PREFIX = "/_guardbot/v1/pwlu"
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(
        self, status: int, errcode: str, error: str, *, retry_after_ms: int | None = None
    ) -> None:
        super().__init__(error)
        self.status, self.errcode, self.error = status, errcode, error
        self.retry_after_ms = retry_after_ms
        self.extra = {} if retry_after_ms is None else {"retry_after_ms": retry_after_ms}


def _api(handler: Handler) -> Handler:
    """Refusals become Matrix error JSON; the homeserver's own pass through as it gave them."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except ApiError as e:
            resp = matrix_error(e.status, e.errcode, e.error, **e.extra)
            if e.retry_after_ms is not None:
                resp.headers["Retry-After"] = str(max(1, -(-e.retry_after_ms // 1000)))
        except AccountError as e:
            resp = matrix_error(e.status, e.errcode, e.error)
        except HomeserverError as e:
            answer = homeserver_answer(e)
            resp = web.json_response(answer.body, status=answer.status)
        resp.headers.update(CORS)
        return resp

    return wrapped


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, RecursionError):
        raise ApiError(400, "M_NOT_JSON", "Body is not JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "M_BAD_JSON", "Body must be a JSON object")
    return body


def _optional(body: dict[str, Any], key: str, kind: type, what: str) -> Any:
    value = body.get(key)
    if value is not None and (not isinstance(value, kind) or (kind is str and not value)):
        raise ApiError(400, "M_BAD_JSON", f"{key} must be {what}")
    return value


class NamedGuestAPI:
    def __init__(
        self,
        client: Homeserver,
        sign_up: SignUp,
        accounts: Accounts,
        limiter: RateLimiter,
        client_address: ClientAddress,
    ) -> None:
        self.client = client
        self.sign_up = sign_up
        self.accounts = accounts
        self.limiter = limiter
        self.client_address = client_address

    def add_routes(self, app: web.Application) -> None:
        for path, method, handler in (
            (f"{PREFIX}/register", "POST", self.register_user),
            (f"{PREFIX}/status", "GET", self.status),
            (f"{PREFIX}/password", "POST", self.password),
        ):
            app.router.add_route(method, path, _api(handler))
            app.router.add_route("OPTIONS", path, self.preflight)

    async def preflight(self, _: web.Request) -> web.Response:
        return web.Response(status=204, headers=CORS)

    async def register_user(self, request: web.Request) -> web.Response:
        client = self._client(request)
        wait_ms = self.limiter.hit(client)
        if wait_ms is not None:
            raise ApiError(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=wait_ms)
        body = await json_body(request)
        username = body.get("username")
        if not isinstance(username, str) or not username or len(username) > 255:
            raise ApiError(400, "M_BAD_JSON", "username must be a string of 1 to 255 characters")
        if "password" in body:
            raise ApiError(
                400,
                "M_INVALID_PARAM",
                "password: a named guest gets no password here; set one later through"
                f" {PREFIX}/password",
            )
        outcome = await self.sign_up.register(
            RegisterRequest(
                username=username,
                auth=_optional(body, "auth", dict, "an object"),
                guest_access_token=_optional(body, "guest_access_token", str, "a string"),
                initial_device_display_name=_optional(
                    body, "initial_device_display_name", str, "a string"
                ),
                client_address=forwardable(client),
            )
        )
        return web.json_response(outcome.body, status=outcome.status)

    def _client(self, request: web.Request) -> str:
        return self.client_address(request.remote, request.headers.get("X-Forwarded-For"))

    async def _whoami(self, request: web.Request) -> dict[str, Any]:
        """The caller, by their own token. Each wrong token costs the homeserver a look-up,
        so wrong tokens are charged to the client's bucket (right ones cost nothing)."""
        client = self._client(request)
        wait_ms = self.limiter.waiting(client)
        if wait_ms is not None:
            raise ApiError(429, "M_LIMIT_EXCEEDED", "Too many requests", retry_after_ms=wait_ms)
        token = bearer_token(request)
        if not token:
            self.limiter.hit(client)
            raise ApiError(401, "M_MISSING_TOKEN", "Missing access token")
        try:
            who = await self.client.whoami(token)  # 401 M_UNKNOWN_TOKEN passes through
        except HomeserverError as e:
            if e.status == 401:
                self.limiter.hit(client)
            raise
        if not isinstance(who.get("user_id"), str):
            raise ApiError(502, "M_UNKNOWN", "The homeserver did not say who this is")
        return {**who, "token": token}

    async def status(self, request: web.Request) -> web.Response:
        who = await self._whoami(request)
        return web.json_response(
            await self.accounts.status(who["user_id"], is_guest=bool(who.get("is_guest")))
        )

    async def password(self, request: web.Request) -> web.Response:
        who = await self._whoami(request)
        if who.get("is_guest"):
            raise ApiError(403, "M_GUEST_ACCESS_FORBIDDEN", "Guests have no password to set")
        body = await json_body(request)
        new = body.get("new_password")
        if new is None:
            raise ApiError(400, "M_MISSING_PARAM", "new_password is required")
        if not isinstance(new, str) or not new or len(new) > 512:
            raise ApiError(400, "M_BAD_JSON", "new_password must be 1 to 512 characters")
        await self.accounts.set_password(who["user_id"], new, who["token"])
        return web.json_response({})
