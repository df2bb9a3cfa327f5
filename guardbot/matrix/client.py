"""The homeserver as guardbot talks to it: client-server and Synapse admin API calls, for the
guard loop and the named-guest (PWLU) work alike.

Some calls run as guardbot (the appservice token), some as a user or guest (their own token,
which the client handed over) and some with no token at all (registration, login).

A thin adapter over aiohttp rather than mautrix's HTTPAPI: that one turns error answers into
exceptions that drop the body, and guardbot needs it (`retry_after_ms`, which 403 it was).
Requests are never logged with their bodies or headers, so no token reaches a log line.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from guardbot.core.clock import Clock
from guardbot.core.power import RoomPower

log = logging.getLogger(__name__)

CS = "/_matrix/client/v3"
STALE_TOKEN = (
    "the homeserver does not know guardbot's as_token: it loaded another registration for"
    " guardbot. Restart guardbot if you ran `guardbot -g --new-tokens`, and check that"
    " app_service_config_files names the registration written with this config's tokens"
    " (guardbot doctor compares them); guardbot's work waits until then"
)
STALE_TOKEN_LOG_EVERY_S = 60.0
# The login probe always uses this device, so a probe cut off before its logout leaves at most
# one stray device per account, replaced by the next probe.
PROBE_DEVICE = "GUARDBOT_PASSWORD_CHECK"


@dataclass
class HomeserverError(Exception):
    """The homeserver answered with an error, or could not be reached (status 0)."""

    status: int
    errcode: str
    error: str
    body: dict[str, Any]
    # The homeserver does not know guardbot's own as_token: its registration and this
    # process's config disagree. Nothing is refused for good over it; the work waits.
    stale_token: bool = False

    def __str__(self) -> str:
        if self.status == 0:
            return f"homeserver unreachable: {self.error}"
        return f"{self.status} {self.errcode}: {self.error}"

    @property
    def retry_after_ms(self) -> int | None:
        value = self.body.get("retry_after_ms")
        return value if isinstance(value, int) and value >= 0 else None

    @property
    def transient(self) -> bool:
        """Worth retrying later as is: rate limits, outages, timeouts, a stale token."""
        return self.stale_token or self.status in (0, 429, 502, 503, 504) or self.status >= 500

    @property
    def not_in_room(self) -> bool:
        text = self.error.lower()
        return self.status == 403 and ("not in room" in text or "not in the room" in text)


def q(value: str) -> str:
    return quote(value, safe="")


def _user_token(token: str) -> str:
    # Homeserver.request falls back to guardbot's own token when given none: an empty user
    # token must never turn a user's request into one made as guardbot.
    if not token:
        raise HomeserverError(401, "M_MISSING_TOKEN", "Missing access token", {})
    # No homeserver issues other tokens; Synapse answers a non-ASCII one with a 500, and a
    # CR/LF (possible in a JSON guest_access_token) makes aiohttp raise. Unknown, not asked.
    if not (token.isascii() and token.isprintable()):
        raise HomeserverError(401, "M_UNKNOWN_TOKEN", "Unrecognised access token", {})
    return token


def _dicts(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    items = data.get(key)
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def _strings(data: dict[str, Any], key: str) -> list[str]:
    items = data.get(key)
    return [e for e in items if isinstance(e, str)] if isinstance(items, list) else []


class Homeserver:
    def __init__(
        self,
        address: str,
        as_token: str,
        bot_user_id: str,
        timeout: float = 30,
        on_back: Callable[[], None] = lambda: None,
        clock: Clock | None = None,
        may_write: Callable[[], bool] = lambda: True,
        log_stale_token: bool = True,
    ) -> None:
        self.clock = clock or Clock()
        self.address = address.rstrip("/")
        self.bot_user_id = bot_user_id
        self._auth = {"Authorization": f"Bearer {as_token}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self.unreachable = False  # the last request found no homeserver (or only its proxy)
        # Called when a request works again after that: whatever waits in backoff for the
        # homeserver should go now, not minutes later when its own backoff runs out.
        self.on_back = on_back
        # Asked before every write: a leader whose lease may have run out (a standby may be
        # acting by now) must not kick, send or set anything (guardbot/leader.py).
        self.may_write = may_write
        self._stale_logged_at: float | None = None
        self._log_stale_token = log_stale_token  # doctor says it on its own line instead

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
        auth: bool = True,
        token: str | None = None,
        on_behalf_of: str | None = None,
    ) -> dict[str, Any]:
        """`on_behalf_of`: the address of the person this request is for (a named guest's
        registration, the claim page's login). Sent as X-Forwarded-For, so a homeserver that
        trusts guardbot's forwarding counts it against that person's own limits, not
        guardbot's one address."""
        headers = (
            {"Authorization": f"Bearer {token}"} if token else dict(self._auth) if auth else {}
        )
        if on_behalf_of:
            headers["X-Forwarded-For"] = on_behalf_of
        if method != "GET" and not self.may_write():
            # Transient, like an outage: what was to be done waits, and is done by whichever
            # process leads once that is known.
            raise HomeserverError(503, "M_UNKNOWN", "not sent: this guardbot's lease is unsure", {})
        try:
            async with self.session.request(
                method, self.address + path, json=body, params=query, headers=headers
            ) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            self._reachable(False)
            raise HomeserverError(0, "M_CONNECTION_FAILED", str(e) or type(e).__name__, {}) from e
        self._reachable(status not in (502, 503, 504))  # those: a proxy without its upstream
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        if status >= 400:
            log.debug("%s %s -> %d %s", method, path.split("?")[0], status, data.get("errcode"))
            # Not a Matrix answer (a proxy's HTML error page): one line, not the page.
            plain = f"HTTP {status} without a Matrix error" + (
                " (a proxy whose upstream is down?)" if status in (502, 503, 504) else ""
            )
            errcode = str(data.get("errcode", "M_UNKNOWN"))
            if status == 401 and not token and auth:
                self._stale_token()
                raise HomeserverError(status, errcode, STALE_TOKEN, data, stale_token=True)
            raise HomeserverError(status, errcode, str(data.get("error", plain)), data)
        return data

    def _stale_token(self) -> None:
        if not self._log_stale_token:
            return
        now = self.clock.monotonic()
        if self._stale_logged_at is None or now - self._stale_logged_at >= STALE_TOKEN_LOG_EVERY_S:
            self._stale_logged_at = now
            log.error("401 from the homeserver: %s", STALE_TOKEN)

    def _reachable(self, answered: bool) -> None:
        was_unreachable, self.unreachable = self.unreachable, not answered
        if answered and was_unreachable:
            log.info("The homeserver answers again")
            self.on_back()

    # -- appservice set-up -----------------------------------------------------------------
    async def versions(self) -> dict[str, Any]:
        return await self.request("GET", "/_matrix/client/versions", auth=False)

    async def register_bot(self) -> bool:
        """Register guardbot's own user; False if it already existed."""
        localpart = self.bot_user_id[1:].split(":", 1)[0]
        body = {"type": "m.login.application_service", "username": localpart}
        try:
            await self.request("POST", "/_matrix/client/v3/register", body)
        except HomeserverError as e:
            if e.errcode == "M_USER_IN_USE":
                return False
            raise
        return True

    async def ping(self, appservice_id: str) -> dict[str, Any]:
        path = f"/_matrix/client/v1/appservice/{q(appservice_id)}/ping"
        return await self.request("POST", path, {"transaction_id": "guardbot-startup"})

    # -- admin API -------------------------------------------------------------------------
    async def is_server_admin(self) -> bool:
        try:
            data = await self.request(
                "GET", f"/_synapse/admin/v1/users/{q(self.bot_user_id)}/admin"
            )
        except HomeserverError as e:
            if e.status in (401, 403, 404) and not e.stale_token:
                return False
            raise  # a stale token is not a lost right: the rights are unknown until fixed
        return bool(data.get("admin"))

    async def admin_user(self, user_id: str) -> dict[str, Any] | None:
        """The admin API's view of a local user; None if there is no such user."""
        try:
            return await self.request("GET", f"/_synapse/admin/v2/users/{q(user_id)}")
        except HomeserverError as e:
            if e.status == 404:
                return None
            raise

    async def users_page(self, start: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """One page of the admin API's accounts (deactivated ones left out), in a stable order;
        and where the next page starts (None: this was the last)."""
        query = {
            "from": str(start),
            "limit": str(limit),
            "deactivated": "false",
            "order_by": "name",
        }
        data = await self.request("GET", "/_synapse/admin/v2/users", query=query)
        users = [u for u in data.get("users") or [] if isinstance(u, dict)]
        following = data.get("next_token")
        return users, int(following) if isinstance(following, (int, str)) and str(
            following
        ).isdigit() else None

    async def set_user_type(self, user_id: str, user_type: str | None) -> None:
        await self.request(
            "PUT", f"/_synapse/admin/v2/users/{q(user_id)}", {"user_type": user_type}
        )

    async def device_count(self, user_id: str) -> int:
        data = await self.request("GET", f"/_synapse/admin/v2/users/{q(user_id)}/devices")
        total = data.get("total")
        return total if isinstance(total, int) else len(data.get("devices") or [])

    async def suspend(self, user_id: str, suspend: bool) -> None:
        await self.request("PUT", f"/_synapse/admin/v1/suspend/{q(user_id)}", {"suspend": suspend})

    async def deactivate(self, user_id: str, erase: bool) -> None:
        await self.request("POST", f"/_synapse/admin/v1/deactivate/{q(user_id)}", {"erase": erase})

    async def admin_join(self, room_id: str) -> None:
        await self.request(
            "POST", f"/_synapse/admin/v1/join/{q(room_id)}", {"user_id": self.bot_user_id}
        )

    # -- rooms -----------------------------------------------------------------------------
    async def public_rooms_page(self, limit: int, since: str | None) -> dict[str, Any]:
        """One page of the room directory, every network's: the main list and the rooms an
        appservice (a bridge) lists under its own network, which clients show too."""
        body: dict[str, Any] = {"limit": limit, "include_all_networks": True}
        if since:
            body["since"] = since
        return await self.request("POST", "/_matrix/client/v3/publicRooms", body)

    async def resolve_alias(self, alias: str) -> str:
        data = await self.request("GET", f"/_matrix/client/v3/directory/room/{q(alias)}")
        return str(data["room_id"])

    async def directory_visibility(self, room_id: str) -> str:
        path = f"/_matrix/client/v3/directory/list/room/{q(room_id)}"
        try:
            data = await self.request("GET", path)
        except HomeserverError as e:
            if e.status == 404:
                return "private"
            raise
        return str(data.get("visibility", "private"))

    async def state_event(
        self, room_id: str, etype: str, state_key: str = "", *, format_event: bool = False
    ) -> dict | None:
        """Content of a state event (the whole event with format_event), None if unset."""
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(etype)}/{q(state_key)}"
        query = {"format": "event"} if format_event else None
        try:
            return await self.request("GET", path, query=query)
        except HomeserverError as e:
            if e.status == 404 and e.errcode == "M_NOT_FOUND":
                return None
            raise

    async def room_event(self, room_id: str, event_id: str) -> dict[str, Any]:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/event/{q(event_id)}"
        return await self.request("GET", path)

    async def room_power(self, room_id: str) -> RoomPower:
        levels = await self.state_event(room_id, "m.room.power_levels")
        create = await self.state_event(room_id, "m.room.create", format_event=True)
        return RoomPower.from_state(levels, create)

    async def send_message(self, room_id: str, text: str, html: str, txn_id: str) -> None:
        """A notice, plain and HTML. A fixed txn_id lets the homeserver drop a resend."""
        content = {"msgtype": "m.notice", "body": text}
        if html and html != text:
            content |= {"format": "org.matrix.custom.html", "formatted_body": html}
        await self.send(room_id, content, txn_id)

    async def send_state(
        self, room_id: str, etype: str, content: dict, state_key: str = "", *, as_user: str = ""
    ) -> str:
        """Send a state event, as guardbot or (appservice masquerading) as a namespace user."""
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/state/{q(etype)}/{q(state_key)}"
        query = {"user_id": as_user} if as_user else None
        return str((await self.request("PUT", path, content, query=query)).get("event_id", ""))

    async def members(self, room_id: str) -> list[dict[str, Any]]:
        """Member events of everyone not gone from the room."""
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/members"
        return _dicts(await self.request("GET", path, query={"not_membership": "leave"}), "chunk")

    async def kick(self, room_id: str, user_id: str, reason: str) -> None:
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/kick"
        await self.request("POST", path, {"user_id": user_id, "reason": reason})

    async def join(self, room_id: str) -> None:
        await self.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})

    # -- accounts ------------------------------------------------------------------------
    async def register(
        self, body: dict[str, Any], on_behalf_of: str | None = None
    ) -> dict[str, Any]:
        """Plain client registration (no token: /register refuses one)."""
        return await self.request(
            "POST", f"{CS}/register", body, auth=False, on_behalf_of=on_behalf_of
        )

    async def whoami(self, token: str) -> dict[str, Any]:
        return await self.request("GET", f"{CS}/account/whoami", token=_user_token(token))

    async def login(self, user_id: str, password: str, on_behalf_of: str | None = None) -> str:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "device_id": PROBE_DEVICE,
            "initial_device_display_name": "guardbot password check",
        }
        data = await self.request(
            "POST", f"{CS}/login", body, auth=False, on_behalf_of=on_behalf_of
        )
        return str(data["access_token"])

    async def admin_login_as(self, user_id: str, valid_for_ms: int = 60_000) -> str:
        """A short-lived token for a user, from the admin API (no password, no login limit)."""
        path = f"/_synapse/admin/v1/users/{q(user_id)}/login"
        valid_until = self.clock.now_ms() + valid_for_ms
        data = await self.request("POST", path, {"valid_until_ms": valid_until})
        return str(data["access_token"])

    async def password_confirms(self, token: str, user_id: str, password: str) -> bool:
        """Is this the user's password? Asked through the user-interactive auth of deleting
        no devices (it changes nothing): True if it passes, False if the homeserver refuses it."""
        path = f"{CS}/delete_devices"
        token = _user_token(token)
        try:
            await self.request("POST", path, {"devices": []}, token=token)
            return True  # the homeserver skipped auth: it trusts this token as it is
        except HomeserverError as e:
            session = e.body.get("session")
            if e.status != 401 or not isinstance(session, str):
                raise
        auth = {
            "type": "m.login.password",
            "session": session,
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
        }
        try:
            await self.request("POST", path, {"devices": [], "auth": auth}, token=token)
        except HomeserverError as e:
            if e.status in (401, 403) and e.errcode == "M_FORBIDDEN":
                return False
            raise
        return True

    async def logout(self, token: str) -> None:
        await self.request("POST", f"{CS}/logout", {}, token=_user_token(token))

    async def change_password(
        self, token: str, user_id: str, old_password: str, new_password: str
    ) -> None:
        """/account/password with user-interactive auth by the old password. The user's other
        devices stay logged in (logout_devices: false): they are the user's own sessions."""
        path = f"{CS}/account/password"
        token = _user_token(token)
        body: dict[str, Any] = {"new_password": new_password, "logout_devices": False}
        try:
            await self.request("POST", path, body, token=token)
            return  # the homeserver skipped auth (a recent one still counts)
        except HomeserverError as e:
            session = e.body.get("session")
            if e.status != 401 or not isinstance(session, str) or "errcode" in e.body:
                raise
        body["auth"] = {
            "type": "m.login.password",
            "session": session,
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": old_password,
        }
        await self.request("POST", path, body, token=token)

    async def user_exists(self, user_id: str) -> bool:
        """Read-only, without admin rights: Synapse gives every account a profile and answers
        404 for a user without one."""
        try:
            await self.request("GET", f"{CS}/profile/{q(user_id)}")
        except HomeserverError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def displayname(self, user_id: str) -> str | None:
        try:
            data = await self.request("GET", f"{CS}/profile/{q(user_id)}/displayname")
        except HomeserverError as e:
            if e.status in (403, 404):
                return None
            raise
        name = data.get("displayname")
        return name if isinstance(name, str) and name.strip() else None

    async def deactivated(self, user_id: str) -> bool | None:
        """From the admin API; None when guardbot cannot tell (not a server admin)."""
        try:
            data = await self.admin_user(user_id)
        except HomeserverError as e:
            if e.status in (401, 403):
                return None
            raise
        return True if data is None else bool(data.get("deactivated"))

    # -- a guest's rooms -----------------------------------------------------------------
    async def joined_rooms(self, token: str) -> list[str]:
        data = await self.request("GET", f"{CS}/joined_rooms", token=_user_token(token))
        return _strings(data, "joined_rooms")

    async def joined_rooms_of(self, user_id: str) -> list[str]:
        """A user's rooms, asked as them: guests' numeric IDs are in guardbot's namespace."""
        data = await self.request("GET", f"{CS}/joined_rooms", query={"user_id": user_id})
        return _strings(data, "joined_rooms")

    async def leave_as_user(self, room_id: str, user_id: str) -> None:
        """Leave as a user of guardbot's namespace (appservice masquerading)."""
        path = f"{CS}/rooms/{q(room_id)}/leave"
        await self.request("POST", path, {}, query={"user_id": user_id})

    async def join_as(self, room_id: str, token: str) -> None:
        await self.request("POST", f"{CS}/join/{q(room_id)}", {}, token=_user_token(token))

    async def leave_as(self, room_id: str, token: str) -> None:
        await self.request("POST", f"{CS}/rooms/{q(room_id)}/leave", {}, token=_user_token(token))

    # -- guardbot's DMs ------------------------------------------------------------------
    async def create_dm(self, user_id: str, marker: str) -> str:
        body = {
            "preset": "private_chat",
            "is_direct": True,
            "invite": [user_id],
            "name": "guardbot",
            # Lets guardbot find this room again if it crashed before storing its ID.
            "creation_content": {marker: user_id},
        }
        data = await self.request("POST", f"{CS}/createRoom", body)
        return str(data["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        path = f"{CS}/rooms/{q(room_id)}/invite"
        await self.request("POST", path, {"user_id": user_id})

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        """Send as guardbot; the same txn_id again returns the first event, sends nothing."""
        path = f"{CS}/rooms/{q(room_id)}/send/m.room.message/{q(txn_id)}"
        return str((await self.request("PUT", path, content)).get("event_id", ""))

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        path = f"{CS}/rooms/{q(room_id)}/messages"
        data = await self.request("GET", path, query={"dir": "b", "limit": str(limit)})
        return _dicts(data, "chunk")

    async def bot_rooms(self) -> list[str]:
        data = await self.request("GET", f"{CS}/joined_rooms")
        return _strings(data, "joined_rooms")

    async def create_content(self, room_id: str) -> dict[str, Any]:
        path = f"{CS}/rooms/{q(room_id)}/state/m.room.create/"
        return await self.request("GET", path)
