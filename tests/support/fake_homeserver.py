"""One scripted homeserver, for the tests (and benchmarks) that need a homeserver a real
Synapse cannot be on cue: one that fails, rate-limits, is slow or unreachable when told, or
answers a storm at no cost. A small aiohttp server speaking the client-server API and
Synapse's admin API as far as guardbot uses them; guardbot talks to it through its own client
(guardbot/matrix/client.py), over HTTP, as it talks to Synapse.

What it keeps: users as the admin API shows them (`user()`: guest, admin, deactivated, a
password of their own), rooms (`room()`: state events, members, the messages sent, listed in
the public directory or not), access tokens it handed out, and every request it answered, in
order (`called(route)`: the route, its path parameters, query, body, token and the status
answered).

What a test scripts, per route (the names in ROUTES; a state request's route is "state <type>"
for a read and "send_state <type>" for a write, e.g. "send_state m.room.guest_access"):

- `script(route, *answers)`: the next requests get these answers, in order, then the route
  behaves again; an Answer is a status and a Matrix error (or a text page, a proxy's), or
  DROP: the connection is cut, no answer at all (aiohttp retries a GET once on a cut
  connection, so a GET needs two);
- `always(route, answer)`: every request, until `always(route, None)`;
- `slow(route, seconds)`: each request waits that long first (`most_at_once(route)` counts
  how many were in flight together);
- `rate_limit(route, burst, every_s)`: a bucket like Synapse's, answering 429 with
  retry_after_ms when empty.

A request it does not know is answered 404 M_UNRECOGNIZED, like Synapse's, and recorded too.
A room it does not know answers 403 M_FORBIDDEN, as to a user who is not in it.

`python -m bench.fakehs` builds on it in a process of its own (answers computed in advance);
bench/door.py and bench/nags.py keep in-process stand-ins, so that what they time is
guardbot's own work without any HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.test_utils import TestServer

from guardbot.core.clock import Clock

CS = "/_matrix/client/v3"
ID = r"[^/]+"
# (method, path pattern, route name). The first that matches names the request.
ROUTES: list[tuple[str, str, str]] = [
    ("GET", r"/_matrix/client/versions", "versions"),
    ("POST", CS + r"/register", "register"),
    ("POST", rf"/_matrix/client/v1/appservice/(?P<id>{ID})/ping", "ping"),
    ("GET", rf"/_synapse/admin/v1/users/(?P<user>{ID})/admin", "is_admin"),
    ("POST", rf"/_synapse/admin/v1/users/(?P<user>{ID})/login", "admin_login"),
    ("GET", r"/_synapse/admin/v2/users", "users_page"),
    ("GET", rf"/_synapse/admin/v2/users/(?P<user>{ID})/devices", "devices"),
    ("GET", rf"/_synapse/admin/v2/users/(?P<user>{ID})", "admin_user"),
    ("PUT", rf"/_synapse/admin/v2/users/(?P<user>{ID})", "set_user"),
    ("PUT", rf"/_synapse/admin/v1/suspend/(?P<user>{ID})", "suspend"),
    ("POST", rf"/_synapse/admin/v1/deactivate/(?P<user>{ID})", "deactivate"),
    ("POST", rf"/_synapse/admin/v1/join/(?P<room>{ID})", "admin_join"),
    ("GET", CS + r"/publicRooms", "public_rooms"),
    ("POST", CS + r"/publicRooms", "public_rooms"),
    ("GET", CS + rf"/directory/room/(?P<alias>{ID})", "resolve_alias"),
    ("GET", CS + rf"/directory/list/room/(?P<room>{ID})", "directory_visibility"),
    ("GET", CS + rf"/rooms/(?P<room>{ID})/state/(?P<type>{ID})/(?P<key>[^/]*)", "state"),
    ("PUT", CS + rf"/rooms/(?P<room>{ID})/state/(?P<type>{ID})/(?P<key>[^/]*)", "send_state"),
    ("GET", CS + rf"/rooms/(?P<room>{ID})/members", "members"),
    ("GET", CS + rf"/rooms/(?P<room>{ID})/event/(?P<event>{ID})", "room_event"),
    ("GET", CS + rf"/rooms/(?P<room>{ID})/messages", "messages"),
    ("POST", CS + rf"/rooms/(?P<room>{ID})/kick", "kick"),
    ("POST", CS + rf"/rooms/(?P<room>{ID})/invite", "invite"),
    ("POST", CS + rf"/rooms/(?P<room>{ID})/leave", "leave"),
    ("PUT", CS + rf"/rooms/(?P<room>{ID})/send/(?P<type>{ID})/(?P<txn>{ID})", "send"),
    ("POST", CS + rf"/join/(?P<room>{ID})", "join"),
    ("POST", CS + r"/createRoom", "create_room"),
    ("GET", CS + r"/joined_rooms", "joined_rooms"),
    ("POST", CS + r"/login", "login"),
    ("POST", CS + r"/logout", "logout"),
    ("POST", CS + r"/account/password", "account_password"),
    ("POST", CS + r"/delete_devices", "delete_devices"),
    ("GET", CS + r"/account/whoami", "whoami"),
    ("GET", CS + rf"/profile/(?P<user>{ID})/displayname", "displayname"),
    ("GET", CS + rf"/profile/(?P<user>{ID})", "profile"),
]
_COMPILED = [(method, re.compile(pattern + "$"), name) for method, pattern, name in ROUTES]
PAGE = 100  # Synapse's most rooms per /publicRooms page (MAX_PUBLIC_ROOMS_IN_RESPONSE)


@dataclass(frozen=True)
class Answer:
    """A scripted answer: a status and its body (a dict is a Matrix answer, a str a page that
    is not JSON, as a proxy's error page)."""

    status: int
    body: dict[str, Any] | str = field(default_factory=dict)

    def response(self) -> web.Response:
        if isinstance(self.body, str):
            return web.Response(status=self.status, text=self.body, content_type="text/html")
        return web.json_response(self.body, status=self.status)


DROP = Answer(0)  # the connection cut: no answer at all


def error(status: int, errcode: str, text: str = "", **extra: Any) -> Answer:
    """A Matrix error answer: error(429, "M_LIMIT_EXCEEDED", retry_after_ms=1500)."""
    return Answer(status, {"errcode": errcode, "error": text or errcode, **extra})


@dataclass
class Call:
    """One request, as the fake answered it."""

    route: str
    method: str
    params: dict[str, str]  # the path's parameters, decoded: room, user, type, key, txn...
    query: dict[str, str]
    body: Any
    token: str | None
    status: int = 0  # the status answered (0: cut off, or not answered yet)
    # When it arrived and when it was answered, on one count of both: a request answered
    # before another arrived has answered < arrived.
    arrived: int = 0
    answered: int = 0


@dataclass
class FakeRoom:
    room_id: str
    hs: FakeHomeserver
    state: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # messages, oldest first
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # every event, by ID
    listed: bool = False
    joined_count: int | None = None  # what the directory says, when a test says so

    def set(
        self, etype: str, content: dict[str, Any], key: str = "", sender: str = ""
    ) -> dict[str, Any]:
        """A state event, as if `sender` (guardbot by default) had sent it; like Synapse's, it
        names the event it replaces and that one's content (unsigned)."""
        event: dict[str, Any] = {
            "type": etype,
            "room_id": self.room_id,
            "state_key": key,
            "sender": sender or self.hs.bot_user_id,
            "content": content,
            "event_id": self.hs.event_id(),
            "origin_server_ts": self.hs.clock.now_ms(),
            "unsigned": {},
        }
        before = self.state.get((etype, key))
        if before is not None:
            event["unsigned"] = {
                "replaces_state": before["event_id"],
                "prev_content": before["content"],
            }
        self.state[(etype, key)] = self.events[event["event_id"]] = event
        return event

    def get(self, etype: str, key: str = "") -> dict[str, Any] | None:
        """The whole state event, None if unset."""
        return self.state.get((etype, key))

    def member(
        self,
        user_id: str,
        membership: str = "join",
        *,
        kind: str | None = None,
        sender: str = "",
        reason: str | None = None,
    ) -> dict[str, Any]:
        content: dict[str, Any] = {"membership": membership}
        if kind:
            content["kind"] = kind
        if reason is not None:
            content["reason"] = reason
        return self.set("m.room.member", content, user_id, sender or user_id)

    def membership(self, user_id: str) -> str | None:
        event = self.get("m.room.member", user_id)
        return event["content"].get("membership") if event else None

    def members(self) -> list[dict[str, Any]]:
        return [e for (etype, _), e in self.state.items() if etype == "m.room.member"]

    def joined(self) -> list[str]:
        return [e["state_key"] for e in self.members() if e["content"]["membership"] == "join"]

    def say(self, sender: str, content: dict[str, Any], txn: str = "") -> dict[str, Any]:
        """A message in the room's timeline (a transaction ID remembered for its sender)."""
        event = {
            "type": "m.room.message",
            "room_id": self.room_id,
            "sender": sender,
            "content": content,
            "event_id": self.hs.event_id(),
            "origin_server_ts": self.hs.clock.now_ms(),
            "unsigned": {"transaction_id": txn} if txn else {},
        }
        self.timeline.append(event)
        self.events[event["event_id"]] = event
        return event


class _Bucket:
    """Synapse's rate limiter: `burst` at once, one more every `every_s` seconds."""

    def __init__(self, burst: int, every_s: float) -> None:
        self.burst, self.every_s = burst, every_s
        self.tokens, self.last = float(burst), time.monotonic()

    def take(self) -> Answer | None:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) / self.every_s)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        wait_ms = int((1 - self.tokens) * self.every_s * 1000) + 1
        return error(429, "M_LIMIT_EXCEEDED", "Too Many Requests", retry_after_ms=wait_ms)


Handler = Callable[[Call], Awaitable[web.Response]]


def directory_query(call: Call) -> dict[str, Any]:
    """/publicRooms's paging, from the query (GET) or the body (POST, as guardbot asks)."""
    body = call.body if isinstance(call.body, dict) else {}
    return {**call.query, **body}


class FakeHomeserver:
    def __init__(
        self,
        *,
        domain: str = "example.org",
        bot_user_id: str = "@guardbot:example.org",
        port: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`port`: where it will listen once started (a test that starts it late, to be
        unreachable first); a free one by default."""
        self.domain = domain
        self.bot_user_id = bot_user_id
        self.clock = clock or Clock()
        self.bot_is_admin = True  # what the admin API says of guardbot itself
        self.users: dict[str, dict[str, Any]] = {}
        self.rooms: dict[str, FakeRoom] = {}
        self.aliases: dict[str, str] = {}
        self.tokens: dict[str, str] = {}  # access token -> user ID
        self.calls: list[Call] = []
        self._scripts: dict[str, deque[Answer]] = {}
        self._always: dict[str, Answer] = {}
        self._delays: dict[str, float] = {}
        self._buckets: dict[str, _Bucket] = {}
        self._in_flight: Counter[str] = Counter()
        self._most: Counter[str] = Counter()
        self._txns: dict[tuple[str, str, str], str] = {}  # (room, sender, txn) -> event ID
        self._ids = 0
        self._ticks = 0
        self._handlers: dict[str, Handler] = {
            name: getattr(self, "_" + name) for _, _, name in ROUTES
        }
        self._server = TestServer(self.app(), port=port) if port else TestServer(self.app())
        self._port = port
        self._address = ""

    # -- running ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    @property
    def url(self) -> str:
        """Its address (known before it starts when a port was given, and after it stops)."""
        if self._address:
            return self._address
        if self._port:
            return f"http://127.0.0.1:{self._port}"
        raise RuntimeError("not started: its port is not known yet")

    async def start(self) -> FakeHomeserver:
        await self._server.start_server()
        self._address = str(self._server.make_url("")).rstrip("/")
        return self

    async def close(self) -> None:
        await self._server.close()

    async def __aenter__(self) -> FakeHomeserver:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- what a test sets up ---------------------------------------------------------------
    def user(
        self,
        user_id: str,
        *,
        guest: bool = False,
        admin: bool = False,
        deactivated: bool = False,
        password: str | None = None,
        displayname: str | None = None,
        last_seen: int | None = None,
        devices: int = 1,
    ) -> dict[str, Any]:
        """A local account, as the admin API shows it (change its entries later: an upgrade is
        `hs.users[u]["is_guest"] = False`). `password`: one of their own, so any other is
        refused; without one, every login of theirs works. `last_seen`: their last activity
        (ms), `devices`: how many they have."""
        self.users[user_id] = {
            "name": user_id,
            "is_guest": guest,
            "admin": admin,
            "deactivated": deactivated,
            "suspended": False,
            "user_type": None,
            "creation_ts": self.clock.now_ms() // 1000,
            "last_seen_ts": last_seen,
            "password": password,
            "displayname": displayname,
            "devices": devices,
        }
        return self.users[user_id]

    def room(self, room_id: str) -> FakeRoom:
        """The room (made on first mention, with guardbot in it)."""
        if room_id not in self.rooms:
            room = self.rooms[room_id] = FakeRoom(room_id, self)
            room.member(self.bot_user_id)
        return self.rooms[room_id]

    def publish(self, room_id: str, members: int | None = None) -> FakeRoom:
        """Listed in the public room directory; `members`: the joined count it shows there
        (its joined members otherwise)."""
        room = self.room(room_id)
        room.listed = True
        room.joined_count = members
        return room

    def login_token(self, user_id: str) -> str:
        token = "syt_fake_" + secrets.token_hex(8)
        self.tokens[token] = user_id
        return token

    def event_id(self) -> str:
        self._ids += 1
        return f"$fake{self._ids}"

    # -- scripts ---------------------------------------------------------------------------
    def script(self, route: str, *answers: Answer) -> None:
        self._scripts.setdefault(route, deque()).extend(answers)

    def always(self, route: str, answer: Answer | None) -> None:
        if answer is None:
            self._always.pop(route, None)
        else:
            self._always[route] = answer

    def slow(self, route: str, seconds: float) -> None:
        self._delays[route] = seconds

    def rate_limit(self, route: str, burst: int, every_s: float) -> None:
        self._buckets[route] = _Bucket(burst, every_s)

    # -- what a test reads -----------------------------------------------------------------
    def called(self, route: str | None = None) -> list[Call]:
        return [c for c in self.calls if route is None or c.route == route]

    def most_at_once(self, route: str) -> int:
        return self._most[route]

    def sent(self) -> list[dict[str, Any]]:
        """Every message sent in any room, in the order it was sent."""
        events = [e for room in self.rooms.values() for e in room.timeline]
        return sorted(events, key=lambda e: int(e["event_id"].removeprefix("$fake")))

    # -- answering -------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        call = await self._call(request)
        if call is None:
            return error(404, "M_UNRECOGNIZED", "Unrecognized request").response()
        route = call.route
        self._in_flight[route] += 1
        self._most[route] = max(self._most[route], self._in_flight[route])
        try:
            if self._delays.get(route):
                await asyncio.sleep(self._delays[route])
            answer = self._scripted(route)
            if answer is DROP:
                if request.transport is not None:
                    request.transport.close()
                return web.Response()
            if answer is not None:
                response = answer.response()
            else:
                kind = route.split(" ")[0]
                response = await self._handlers[kind](call)
        finally:
            self._in_flight[route] -= 1
        call.status = response.status
        call.answered = self._tick()
        return response

    def _tick(self) -> int:
        self._ticks += 1
        return self._ticks

    async def _call(self, request: web.Request) -> Call | None:
        raw = request.rel_url.raw_path
        for method, pattern, name in _COMPILED:
            found = pattern.match(raw)
            if found and request.method == method:
                params = {k: unquote(v) for k, v in found.groupdict().items()}
                route = f"{name} {params['type']}" if name in ("state", "send_state") else name
                break
        else:
            self.calls.append(Call("unknown", request.method, {"path": raw}, {}, None, None, 404))
            return None
        text = await request.text()
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
        auth = request.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None
        call = Call(route, request.method, params, dict(request.query), body, token)
        call.arrived = self._tick()
        self.calls.append(call)
        return call

    def _scripted(self, route: str) -> Answer | None:
        queued = self._scripts.get(route)
        if queued:
            return queued.popleft()
        if route in self._always:
            return self._always[route]
        bucket = self._buckets.get(route)
        return bucket.take() if bucket else None

    def _who(self, call: Call) -> str:
        """Who is asking: a user's token, the appservice's masquerade (?user_id=), or guardbot."""
        if call.token in self.tokens:
            return self.tokens[call.token]
        return call.query.get("user_id") or self.bot_user_id

    def _known_room(self, call: Call) -> FakeRoom | None:
        return self.rooms.get(call.params["room"])

    @staticmethod
    def _ok(body: dict[str, Any] | None = None) -> web.Response:
        return web.json_response(body or {})

    # The routes: named as in ROUTES, each `_<name>(call)`.
    async def _versions(self, call: Call) -> web.Response:
        return self._ok({"versions": ["v1.11"]})

    async def _register(self, call: Call) -> web.Response:
        """Synapse's /register: the appservice's own user exists already; a client's first
        step gets the flows (one dummy stage), a step with `auth` makes the account."""
        body = call.body if isinstance(call.body, dict) else {}
        user_id = f"@{body.get('username', '')}:{self.domain}"
        if body.get("type") == "m.login.application_service" or user_id in self.users:
            return error(400, "M_USER_IN_USE", "User ID already taken.").response()
        if "auth" not in body:
            flows = {"flows": [{"stages": ["m.login.dummy"]}], "params": {}, "session": "s"}
            return Answer(401, flows).response()
        self.user(user_id, password=body.get("password"))
        token = self.login_token(user_id)
        return self._ok({"user_id": user_id, "access_token": token, "device_id": "FAKEDEVICE"})

    async def _ping(self, call: Call) -> web.Response:
        return self._ok({"duration_ms": 1})

    async def _is_admin(self, call: Call) -> web.Response:
        user = call.params["user"]
        admin = self.bot_is_admin if user == self.bot_user_id else self._admin_of(user)
        return self._ok({"admin": admin})

    def _admin_of(self, user_id: str) -> bool:
        return bool(self.users.get(user_id, {}).get("admin"))

    async def _admin_user(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None:
            return error(404, "M_NOT_FOUND", "User not found").response()
        return self._ok(self._shown(user))

    @staticmethod
    def _shown(user: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in user.items() if k not in ("password", "displayname", "devices")}

    async def _users_page(self, call: Call) -> web.Response:
        """The admin API's account list: by name, deactivated ones left out when asked,
        creation times in ms (one user's answer gives seconds)."""
        start, limit = int(call.query.get("from", 0)), int(call.query.get("limit", 100))
        users = sorted(self.users.values(), key=lambda u: u["name"])
        if call.query.get("deactivated") == "false":
            users = [u for u in users if not u["deactivated"]]
        page = [self._shown(u) | {"creation_ts": u["creation_ts"] * 1000} for u in users]
        body: dict[str, Any] = {"users": page[start : start + limit], "total": len(users)}
        if start + limit < len(users):
            body["next_token"] = str(start + limit)
        return self._ok(body)

    async def _devices(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None:
            return error(404, "M_NOT_FOUND", "User not found").response()
        devices = [{"device_id": f"DEVICE{n}"} for n in range(user["devices"])]
        return self._ok({"devices": devices, "total": len(devices)})

    async def _set_user(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None:
            return error(404, "M_NOT_FOUND", "User not found").response()
        body = call.body or {}
        user.update({k: v for k, v in body.items() if k in ("user_type", "admin", "deactivated")})
        return self._ok(self._shown(user))

    async def _suspend(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None:
            return error(404, "M_NOT_FOUND", "User not found").response()
        user["suspended"] = bool((call.body or {}).get("suspend"))
        return self._ok({f"user_{call.params['user']}_suspended": user["suspended"]})

    async def _deactivate(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None:
            return error(404, "M_NOT_FOUND", "User not found").response()
        user["deactivated"] = True
        user["erased"] = bool((call.body or {}).get("erase"))
        return self._ok({"id_server_unbind_result": "success"})

    async def _admin_login(self, call: Call) -> web.Response:
        user_id = call.params["user"]
        user = self.users.get(user_id)
        if user is None or user["deactivated"]:
            return error(404, "M_NOT_FOUND", "User not found").response()
        return self._ok({"access_token": self.login_token(user_id)})

    async def _admin_join(self, call: Call) -> web.Response:
        room = self.room(call.params["room"])
        room.member(self.bot_user_id)
        return self._ok({"room_id": room.room_id})

    async def _public_rooms(self, call: Call) -> web.Response:
        listed = [r for r in self.rooms.values() if r.listed]
        asked = directory_query(call)
        start = int(str(asked.get("since", "p0")).removeprefix("p") or 0)
        limit = min(int(asked.get("limit", PAGE)), PAGE)
        chunk = [
            {
                "room_id": r.room_id,
                "num_joined_members": len(r.joined()) if r.joined_count is None else r.joined_count,
                "world_readable": False,
                "guest_can_join": False,
            }
            for r in listed[start : start + limit]
        ]
        page: dict[str, Any] = {"chunk": chunk, "total_room_count_estimate": len(listed)}
        if start + limit < len(listed):
            page["next_batch"] = f"p{start + limit}"
        return self._ok(page)

    async def _resolve_alias(self, call: Call) -> web.Response:
        room_id = self.aliases.get(call.params["alias"])
        if room_id is None:
            return error(404, "M_NOT_FOUND", "Room alias not found").response()
        return self._ok({"room_id": room_id, "servers": [self.domain]})

    async def _directory_visibility(self, call: Call) -> web.Response:
        room = self._known_room(call)
        return self._ok({"visibility": "public" if room and room.listed else "private"})

    async def _state(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        event = room.get(call.params["type"], call.params["key"])
        if event is None:
            return error(404, "M_NOT_FOUND", "Event not found").response()
        return self._ok(event if call.query.get("format") == "event" else event["content"])

    async def _send_state(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        p = call.params
        event = room.set(p["type"], call.body or {}, p["key"], self._who(call))
        return self._ok({"event_id": event["event_id"]})

    async def _members(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        skip = call.query.get("not_membership")
        chunk = [e for e in room.members() if e["content"]["membership"] != skip]
        return self._ok({"chunk": chunk})

    async def _room_event(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        event = room.events.get(call.params["event"])
        if event is None:
            return error(404, "M_NOT_FOUND", "Event not found").response()
        return self._ok(event)

    async def _messages(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        events = room.timeline[::-1] if call.query.get("dir") == "b" else room.timeline
        return self._ok({"chunk": events[: int(call.query.get("limit", 10))]})

    async def _kick(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        body = call.body or {}
        room.member(body["user_id"], "leave", sender=self._who(call), reason=body.get("reason"))
        return self._ok()

    async def _invite(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        room.member((call.body or {})["user_id"], "invite", sender=self._who(call))
        return self._ok()

    async def _leave(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        room.member(self._who(call), "leave")
        return self._ok()

    async def _join(self, call: Call) -> web.Response:
        room = self.room(call.params["room"])
        room.member(self._who(call))
        return self._ok({"room_id": room.room_id})

    async def _send(self, call: Call) -> web.Response:
        room = self._known_room(call)
        if room is None:
            return error(403, "M_FORBIDDEN", "User not in room").response()
        sender, txn = self._who(call), call.params["txn"]
        key = (room.room_id, sender, txn)
        if key not in self._txns:  # a resend of a transaction is the first event again
            self._txns[key] = room.say(sender, call.body or {}, txn)["event_id"]
        return self._ok({"event_id": self._txns[key]})

    async def _create_room(self, call: Call) -> web.Response:
        body = call.body or {}
        room = self.room(f"!fakeroom{len(self.rooms) + 1}:{self.domain}")
        creator = self._who(call)
        room.set("m.room.create", {**body.get("creation_content", {}), "creator": creator})
        for invitee in body.get("invite", []):
            room.member(invitee, "invite", sender=creator)
        return self._ok({"room_id": room.room_id})

    async def _joined_rooms(self, call: Call) -> web.Response:
        who = self._who(call)
        rooms = [r.room_id for r in self.rooms.values() if r.membership(who) == "join"]
        return self._ok({"joined_rooms": rooms})

    async def _login(self, call: Call) -> web.Response:
        body = call.body or {}
        user_id = (body.get("identifier") or {}).get("user", "")
        user = self.users.get(user_id)
        if user is None or user["password"] not in (None, body.get("password")):
            return error(403, "M_FORBIDDEN", "Invalid username or password").response()
        if user["deactivated"]:
            return error(403, "M_USER_DEACTIVATED", "This account has been deactivated").response()
        return self._ok({"user_id": user_id, "access_token": self.login_token(user_id)})

    async def _logout(self, call: Call) -> web.Response:
        self.tokens.pop(call.token or "", None)
        return self._ok()

    async def _whoami(self, call: Call) -> web.Response:
        if call.token not in self.tokens:
            return error(401, "M_UNKNOWN_TOKEN", "Unrecognised access token").response()
        user_id = self.tokens[call.token or ""]
        is_guest = bool(self.users.get(user_id, {}).get("is_guest"))
        return self._ok({"user_id": user_id, "is_guest": is_guest})

    def _password_auth(self, call: Call) -> web.Response | None:
        """User-interactive auth by the account's password: None once it passes."""
        if call.token not in self.tokens:
            return error(401, "M_UNKNOWN_TOKEN", "Unrecognised access token").response()
        auth = (call.body or {}).get("auth")
        if not isinstance(auth, dict):
            flows = {"flows": [{"stages": ["m.login.password"]}], "params": {}, "session": "s"}
            return Answer(401, flows).response()
        user = self.users.get(self.tokens[call.token or ""], {})
        if user.get("password") not in (None, auth.get("password")):
            return error(401, "M_FORBIDDEN", "Invalid password").response()
        return None

    async def _account_password(self, call: Call) -> web.Response:
        refused = self._password_auth(call)
        if refused is not None:
            return refused
        self.users[self.tokens[call.token or ""]]["password"] = call.body["new_password"]
        return self._ok()

    async def _delete_devices(self, call: Call) -> web.Response:
        return self._password_auth(call) or self._ok()

    async def _displayname(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None or not user["displayname"]:
            return error(404, "M_NOT_FOUND", "Profile was not found").response()
        return self._ok({"displayname": user["displayname"]})

    async def _profile(self, call: Call) -> web.Response:
        user = self.users.get(call.params["user"])
        if user is None:
            return error(404, "M_NOT_FOUND", "Profile was not found").response()
        return self._ok({"displayname": user["displayname"]} if user["displayname"] else {})


@contextlib.asynccontextmanager
async def fake_homeserver(**kw: Any) -> AsyncIterator[FakeHomeserver]:
    """A started FakeHomeserver, closed at the end."""
    hs = FakeHomeserver(**kw)
    await hs.start()
    try:
        yield hs
    finally:
        await hs.close()
