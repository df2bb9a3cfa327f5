"""A stand-in homeserver for benchmarks 3 and 5, in its own process: a directory of N listed
rooms (/publicRooms, paginated like Synapse's: at most 100 a page, entries shaped like its), one
big room (/members, member state, kicks), the admin API's user look-up, and what guardbot asks
at start. Every answer is computed before the clock starts, so the figures are guardbot's cost,
not this server's; each request is counted by kind, so the benchmark can count admin calls.

Run as `python -m bench.fakehs --rooms N --members M --guests G --former-guests F`: prints
its port on the first line of stdout, serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
from collections import Counter
from urllib.parse import unquote

from aiohttp import web

DOMAIN = "example.org"
BIG_ROOM = "!bigroom:example.org"
PAGE = 100  # Synapse's most rooms per /publicRooms page (MAX_PUBLIC_ROOMS_IN_RESPONSE)


def room_entry(n: int) -> dict[str, object]:
    return {
        "room_id": f"!{n:08d}listedroom:{DOMAIN}",
        "name": f"Room number {n}",
        "topic": "A room in the public directory, about something or other",
        "canonical_alias": f"#room{n}:{DOMAIN}",
        "num_joined_members": 1 + n % 300,
        "world_readable": False,
        "guest_can_join": n % 3 == 0,
        "join_rule": "public",
        "avatar_url": f"mxc://{DOMAIN}/avatar{n}",
    }


def directory_pages(rooms: int, limit: int) -> dict[str, bytes]:
    """since token ("" for the first page) -> the page's body."""
    entries = [room_entry(n) for n in range(rooms)]
    pages = {}
    for start in range(0, max(rooms, 1), limit):
        page: dict[str, object] = {
            "chunk": entries[start : start + limit],
            "total_room_count_estimate": rooms,
        }
        if start + limit < rooms:
            page["next_batch"] = f"p{start + limit}"
        if start:
            page["prev_batch"] = f"p{start}"
        pages["" if start == 0 else f"p{start}"] = json.dumps(page).encode()
    return pages


def member_event(user_id: str, n: int, guest: bool) -> dict[str, object]:
    content: dict[str, object] = {"membership": "join", "displayname": f"member {n}"}
    if guest:
        content["kind"] = "guest"
    return {
        "type": "m.room.member",
        "room_id": BIG_ROOM,
        "sender": user_id,
        "state_key": user_id,
        "event_id": f"$member{n}",
        "origin_server_ts": 1_700_000_000_000 + n,
        "content": content,
        "unsigned": {"age": 1000},
    }


def big_room(members: int, guests: int, former: int) -> tuple[list[dict], set[str], set[str]]:
    """Named users (local and from other servers), guests, and upgraded former guests (numeric
    IDs whose old member event still says kind: guest), shuffled."""
    rng = random.Random(3)
    named = members - guests - former
    ids = [f"@user{n}:{DOMAIN}" if n % 4 else f"@user{n}:remote.example" for n in range(named)]
    numbers = rng.sample(range(1, 10 * members), guests + former)
    guest_ids = {f"@{n}:{DOMAIN}" for n in numbers[:guests]}
    former_ids = {f"@{n}:{DOMAIN}" for n in numbers[guests:]}
    ids += sorted(guest_ids | former_ids)
    rng.shuffle(ids)
    events = [member_event(u, n, u in guest_ids or u in former_ids) for n, u in enumerate(ids)]
    return events, guest_ids, former_ids


class FakeHomeserver:
    def __init__(self, rooms: int, members: int, guests: int, former: int) -> None:
        self.pages = directory_pages(rooms, PAGE)
        events, self.guests, self.former = big_room(members, guests, former)
        self.members_body = json.dumps({"chunk": events}).encode()
        self.kicked: set[str] = set()
        self.calls: Counter[str] = Counter()

    def app(self) -> web.Application:
        app = web.Application()
        r = app.router
        r.add_get("/_matrix/client/v3/publicRooms", self.public_rooms)
        r.add_get("/_matrix/client/v3/rooms/{room}/members", self.members)
        r.add_get("/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}", self.member)
        r.add_post("/_matrix/client/v3/rooms/{room}/kick", self.kick)
        r.add_get("/_synapse/admin/v2/users/{user}", self.admin_user)
        # What guardbot asks at start (benchmark 5): it is a registered, pingable admin.
        r.add_get("/_matrix/client/versions", self.versions)
        r.add_post("/_matrix/client/v3/register", self.in_use)
        r.add_post("/_matrix/client/v1/appservice/{id}/ping", self.empty)
        r.add_get("/_synapse/admin/v1/users/{user}/admin", self.is_admin)
        r.add_get("/_bench/calls", self.get_calls)
        r.add_post("/_bench/reset", self.reset)
        return app

    def _json(self, body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def public_rooms(self, request: web.Request) -> web.Response:
        self.calls["publicRooms"] += 1
        if int(request.query.get("limit", PAGE)) < PAGE:  # like Synapse, larger ones get PAGE
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bench: limit < 100"}, 400)
        return self._json(self.pages[request.query.get("since", "")])

    async def members(self, _: web.Request) -> web.Response:
        self.calls["members"] += 1
        return self._json(self.members_body)

    async def member(self, request: web.Request) -> web.Response:
        self.calls["member state"] += 1
        user = unquote(request.match_info["user"])
        gone = user in self.kicked
        content = {"membership": "leave" if gone else "join", "kind": "guest"}
        if request.query.get("format") == "event":  # the whole event, as the kick asks
            return web.json_response({"content": content, "sender": user})
        return web.json_response(content)

    async def kick(self, request: web.Request) -> web.Response:
        self.calls["kick"] += 1
        self.kicked.add((await request.json())["user_id"])
        return web.json_response({})

    async def admin_user(self, request: web.Request) -> web.Response:
        self.calls["admin"] += 1
        user = unquote(request.match_info["user"])
        return web.json_response(
            {"name": user, "is_guest": user in self.guests, "admin": False, "deactivated": False}
        )

    async def versions(self, _: web.Request) -> web.Response:
        return web.json_response({"versions": ["v1.11"]})

    async def in_use(self, _: web.Request) -> web.Response:
        return web.json_response({"errcode": "M_USER_IN_USE", "error": "taken"}, status=400)

    async def empty(self, _: web.Request) -> web.Response:
        return web.json_response({})

    async def is_admin(self, _: web.Request) -> web.Response:
        return web.json_response({"admin": True})

    async def get_calls(self, _: web.Request) -> web.Response:
        return web.json_response(dict(self.calls) | {"kicked": sorted(self.kicked)})

    async def reset(self, _: web.Request) -> web.Response:
        self.calls.clear()
        self.kicked.clear()
        return web.json_response({})


async def serve(args: argparse.Namespace) -> None:
    hs = FakeHomeserver(args.rooms, args.members, args.guests, args.former_guests)
    runner = web.AppRunner(hs.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rooms", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--guests", type=int, default=10)
    parser.add_argument("--former-guests", type=int, default=10)
    try:
        asyncio.run(serve(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
