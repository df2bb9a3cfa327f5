"""The client-server calls the PWLU work makes, on guardbot's homeserver adapter.

Some run as guardbot (the appservice token), some as the user or guest (their own token, which
the client handed over) and some with no token at all (registration, login). Bodies hold
passwords and tokens, so nothing here logs a body; HomeserverError keeps only the homeserver's
answer, which never echoes them.
"""

from __future__ import annotations

from typing import Any

from guardbot.matrix.client import Homeserver, HomeserverError, q

CS = "/_matrix/client/v3"
# The login probe always uses this device, so a probe cut off before its logout leaves at most
# one stray device per account, replaced by the next probe.
PROBE_DEVICE = "GUARDBOT_PASSWORD_CHECK"


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


class Client:
    def __init__(self, hs: Homeserver) -> None:
        self.hs = hs

    @property
    def bot_user_id(self) -> str:
        return self.hs.bot_user_id

    # -- accounts ------------------------------------------------------------------------
    async def register(self, body: dict[str, Any]) -> dict[str, Any]:
        """Plain client registration (no token: /register refuses one)."""
        return await self.hs.request("POST", f"{CS}/register", body, auth=False)

    async def whoami(self, token: str) -> dict[str, Any]:
        return await self.hs.request("GET", f"{CS}/account/whoami", token=_user_token(token))

    async def login(self, user_id: str, password: str) -> str:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": user_id},
            "password": password,
            "device_id": PROBE_DEVICE,
            "initial_device_display_name": "guardbot password check",
        }
        data = await self.hs.request("POST", f"{CS}/login", body, auth=False)
        return str(data["access_token"])

    async def logout(self, token: str) -> None:
        await self.hs.request("POST", f"{CS}/logout", {}, token=_user_token(token))

    async def change_password(
        self, token: str, user_id: str, old_password: str, new_password: str
    ) -> None:
        """/account/password with user-interactive auth by the old password. The user's other
        devices stay logged in (logout_devices: false): they are the user's own sessions."""
        path = f"{CS}/account/password"
        token = _user_token(token)
        body: dict[str, Any] = {"new_password": new_password, "logout_devices": False}
        try:
            await self.hs.request("POST", path, body, token=token)
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
        await self.hs.request("POST", path, body, token=token)

    async def displayname(self, user_id: str) -> str | None:
        try:
            data = await self.hs.request("GET", f"{CS}/profile/{q(user_id)}/displayname")
        except HomeserverError as e:
            if e.status in (403, 404):
                return None
            raise
        name = data.get("displayname")
        return name if isinstance(name, str) and name.strip() else None

    async def deactivated(self, user_id: str) -> bool | None:
        """From the admin API; None when guardbot cannot tell (not a server admin)."""
        try:
            data = await self.hs.admin_user(user_id)
        except HomeserverError as e:
            if e.status in (401, 403):
                return None
            raise
        return True if data is None else bool(data.get("deactivated"))

    # -- a guest's rooms -----------------------------------------------------------------
    async def joined_rooms(self, token: str) -> list[str]:
        data = await self.hs.request("GET", f"{CS}/joined_rooms", token=_user_token(token))
        rooms = data.get("joined_rooms")
        return [r for r in rooms if isinstance(r, str)] if isinstance(rooms, list) else []

    async def join_as(self, room_id: str, token: str) -> None:
        await self.hs.request("POST", f"{CS}/join/{q(room_id)}", {}, token=_user_token(token))

    async def leave_as(self, room_id: str, token: str) -> None:
        await self.hs.request(
            "POST", f"{CS}/rooms/{q(room_id)}/leave", {}, token=_user_token(token)
        )

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
        data = await self.hs.request("POST", f"{CS}/createRoom", body)
        return str(data["room_id"])

    async def invite(self, room_id: str, user_id: str) -> None:
        path = f"{CS}/rooms/{q(room_id)}/invite"
        await self.hs.request("POST", path, {"user_id": user_id})

    async def send(self, room_id: str, content: dict[str, Any], txn_id: str) -> str:
        """Send as guardbot; the same txn_id again returns the first event, sends nothing."""
        path = f"{CS}/rooms/{q(room_id)}/send/m.room.message/{q(txn_id)}"
        return str((await self.hs.request("PUT", path, content)).get("event_id", ""))

    async def recent_events(self, room_id: str, limit: int = 50) -> list[dict[str, Any]]:
        path = f"{CS}/rooms/{q(room_id)}/messages"
        data = await self.hs.request("GET", path, query={"dir": "b", "limit": str(limit)})
        chunk = data.get("chunk")
        return [e for e in chunk if isinstance(e, dict)] if isinstance(chunk, list) else []

    async def bot_rooms(self) -> list[str]:
        data = await self.hs.request("GET", f"{CS}/joined_rooms")
        rooms = data.get("joined_rooms")
        return [r for r in rooms if isinstance(r, str)] if isinstance(rooms, list) else []

    async def create_content(self, room_id: str) -> dict[str, Any]:
        path = f"{CS}/rooms/{q(room_id)}/state/m.room.create/"
        return await self.hs.request("GET", path)
