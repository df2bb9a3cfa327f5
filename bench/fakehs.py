"""A stand-in homeserver for benchmarks 3 and 5, in its own process: the tests' scripted
homeserver (tests/support/fake_homeserver.py: member state, kicks, the admin API's user look-up,
what guardbot asks at start) with a directory of N listed rooms (/publicRooms, paginated like
Synapse's: at most 100 a page, entries shaped like its) and one big room (/members) whose
answers are computed before the clock starts, so the figures are guardbot's cost, not this
server's; each request is counted by kind, so the benchmark can count admin calls.

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

from aiohttp import web

from tests.support.fake_homeserver import PAGE, Call, FakeHomeserver, FakeRoom, directory_query

DOMAIN = "example.org"
BIG_ROOM = "!bigroom:example.org"


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


# The route names of the scripted homeserver, as this benchmark has always counted them.
COUNTED = {
    "public_rooms": "publicRooms",
    "members": "members",
    "state m.room.member": "member state",
    "kick": "kick",
    "admin_user": "admin",
}


class BenchHomeserver(FakeHomeserver):
    """The tests' scripted homeserver (tests/support/fake_homeserver.py) with the directory's
    pages and the big room's member list computed once, in advance."""

    def __init__(self, rooms: int, members: int, guests: int, former: int) -> None:
        super().__init__(domain=DOMAIN, bot_user_id=f"@guardbot:{DOMAIN}")
        self.pages = directory_pages(rooms, PAGE)
        self.events, self.guests, self.former = big_room(members, guests, former)
        self.members_body = json.dumps({"chunk": self.events}).encode()
        for event in self.events:
            user_id = str(event["state_key"])
            if user_id.endswith(":" + DOMAIN):
                self.user(user_id, guest=user_id in self.guests)
        self._seat_members()

    def _seat_members(self) -> None:
        room = self.room(BIG_ROOM)
        for event in self.events:
            room.state[("m.room.member", str(event["state_key"]))] = event

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/_bench/calls", self.get_calls)
        app.router.add_post("/_bench/reset", self.reset)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    def _known_room(self, call: Call) -> FakeRoom:
        return self.rooms[BIG_ROOM]  # every room is the big room (the sweep's listed one too)

    def _json(self, body: bytes) -> web.Response:
        return web.Response(body=body, content_type="application/json")

    async def _public_rooms(self, call: Call) -> web.Response:
        asked = directory_query(call)
        if int(asked.get("limit", PAGE)) < PAGE:  # like Synapse, larger ones get PAGE
            return web.json_response({"errcode": "M_UNKNOWN", "error": "bench: limit < 100"}, 400)
        return self._json(self.pages[asked.get("since", "")])

    async def _members(self, call: Call) -> web.Response:
        return self._json(self.members_body)

    async def get_calls(self, _: web.Request) -> web.Response:
        counted = Counter(COUNTED[c.route] for c in self.calls if c.route in COUNTED)
        kicked = sorted(c.body["user_id"] for c in self.called("kick"))
        return web.json_response(dict(counted) | {"kicked": kicked})

    async def reset(self, _: web.Request) -> web.Response:
        self.calls.clear()
        self._seat_members()  # the kicked are back
        return web.json_response({})


async def serve(args: argparse.Namespace) -> None:
    hs = BenchHomeserver(args.rooms, args.members, args.guests, args.former_guests)
    await hs.start()
    print(hs.url.rsplit(":", 1)[1], flush=True)
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
