"""1. Ignoring irrelevant events: transaction body bytes → answered, against bare `json.loads`.

What is measured, per transaction, on one pinned core:
- reference: `json.loads(body)` alone;
- "parse + triage": `json.loads` + the shape check + `parse_events` (triage of every event),
  exactly as `AppserviceAPI._transaction` does them, no database;
- "handler": the real aiohttp handler `AppserviceAPI.transaction` on a request whose body has
  arrived (auth, parse, triage, and what follows: body hash and `InboxStore.record_transaction`
  on SQLite when there is anything to keep; the JSON answer). Only the socket, HTTP parsing and
  building the request object are left out: aiohttp's work, not guardbot's.
Every event is one guardbot must ignore (chat, reactions, redactions, non-guest joins, guest
leaves), so nothing reaches the inbox; the benchmark checks that.

Also: the handler on one body just under `appservice.max_body_size` (16 MiB) full of junk events
(numbers, empty objects, strings, bare member events) with one guest join at its end, which it
must keep: what one hostile or broken transaction costs, against `json.loads` of the same body.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any, cast

from aiohttp import web

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.guard.intake import AppserviceAPI, parse_events

from .common import (
    Options,
    Row,
    best_of,
    database_url,
    fmt_ms,
    fmt_rate,
    pin_to_one_core,
    started_database,
    unpin,
)

DOMAIN = "example.org"
BOT = "@guardbot:example.org"
TOKEN = "bench-hs-token"
WORDS = "the a guest room listed join matrix hello thanks see you tomorrow ok yes no".split()


def _event_id(rng: random.Random) -> str:
    return "$" + "".join(rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop0123456789", k=43))


def irrelevant_event(rng: random.Random, rooms: list[str]) -> dict[str, Any]:
    """An event shaped like what Synapse sends an appservice, that guardbot must ignore."""
    room = rng.choice(rooms)
    sender = rng.choice([f"@user{rng.randrange(500)}:{DOMAIN}", f"@{rng.randrange(10**6)}:x.org"])
    base: dict[str, Any] = {
        "room_id": room,
        "sender": sender,
        "event_id": _event_id(rng),
        "origin_server_ts": 1_700_000_000_000 + rng.randrange(10**9),
        "unsigned": {"age": rng.randrange(5000)},
    }
    kind = rng.random()
    if kind < 0.85:
        text = " ".join(rng.choices(WORDS, k=rng.randrange(2, 40)))
        return base | {"type": "m.room.message", "content": {"msgtype": "m.text", "body": text}}
    if kind < 0.90:
        rel = {"rel_type": "m.annotation", "event_id": _event_id(rng), "key": "👍"}
        return base | {"type": "m.reaction", "content": {"m.relates_to": rel}}
    if kind < 0.93:
        return base | {"type": "m.room.redaction", "redacts": _event_id(rng), "content": {}}
    if kind < 0.97:  # an ordinary user joins: not a guest candidate
        user = f"@user{rng.randrange(500)}:{DOMAIN}"
        content = {"membership": "join", "displayname": user[1:6]}
        return base | {
            "type": "m.room.member",
            "sender": user,
            "state_key": user,
            "content": content,
        }
    guest = f"@{rng.randrange(10**6)}:{DOMAIN}"  # a guest leaves: nothing to do
    prev = {"prev_content": {"membership": "join", "kind": "guest"}, "age": 10}
    return base | {
        "type": "m.room.member",
        "sender": guest,
        "state_key": guest,
        "content": {"membership": "leave"},
        "unsigned": prev,
    }


def make_bodies(count: int, per_txn: int, seed: int = 1) -> list[bytes]:
    rng = random.Random(seed)
    rooms = [f"!{rng.randrange(10**12):x}room:{DOMAIN}" for _ in range(50)]
    return [
        json.dumps({"events": [irrelevant_event(rng, rooms) for _ in range(per_txn)]}).encode()
        for _ in range(count)
    ]


def _time_loads(bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in bodies:
        json.loads(raw)
    return time.perf_counter() - start


def _time_parse(bodies: list[bytes]) -> float:
    start = time.perf_counter()
    for raw in bodies:
        body = json.loads(raw)
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise AssertionError("bad body")
        if parse_events(body, DOMAIN, BOT, ()):
            raise AssertionError("an irrelevant event was kept")
    return time.perf_counter() - start


class _Request:
    """What the handler reads of aiohttp's request (headers, query, route, body), with the
    body already received: making real mocked requests costs ~5 ms each, far more than what
    is measured, and reading the socket is aiohttp's work, not guardbot's."""

    def __init__(self, raw: bytes, txn_id: str) -> None:
        self.headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        self.query: dict[str, str] = {}
        self.match_info = {"txn_id": txn_id}
        self._raw = raw

    async def read(self) -> bytes:
        return self._raw


def _requests(bodies: list[bytes], first_txn: int) -> list[web.Request]:
    requests = [_Request(raw, str(first_txn + i)) for i, raw in enumerate(bodies)]
    return cast(list[web.Request], requests)


async def _time_handler(api: AppserviceAPI, bodies: list[bytes], first_txn: int) -> float:
    requests = _requests(bodies, first_txn)  # built outside the clock: they are test scaffolding
    start = time.perf_counter()
    for request in requests:
        resp = await api.transaction(request)
        if resp.status != 200:
            raise AssertionError(f"handler answered {resp.status}")
    return time.perf_counter() - start


async def measure(per_txn: int, txns: int, repeats: int) -> tuple[float, float, float]:
    """(json.loads, parse + triage, handler) in events per second, best of `repeats`."""
    bodies = make_bodies(txns, per_txn)
    events = per_txn * txns
    loads = best_of(repeats, lambda: _time_loads(bodies))
    parse = best_of(repeats, lambda: _time_parse(bodies))
    async with database_url("sqlite", "") as url, started_database(url) as database:
        inbox = db.InboxStore(database)
        api = AppserviceAPI(TOKEN, DOMAIN, BOT, inbox, Wakeup(), (), Clock())
        await _time_handler(api, bodies[:20], 10**9)  # warm up the connection and caches
        handler = min([await _time_handler(api, bodies, r * txns) for r in range(repeats)])
        if await inbox.size():
            raise AssertionError("an irrelevant event reached the inbox")
    return events / loads, events / parse, events / handler


MAX_BODY = 16 * 1024 * 1024  # appservice.max_body_size as shipped
JUNK = {
    "0": "numbers",
    "{}": "empty objects",
    '"x"': "strings",
    '{"type": "m.room.member"}': "bare member events",
}


def junk_body(junk: str, size: int, n: int) -> bytes:
    """A transaction body of about `size` bytes: `junk` events, then one guest join."""
    guest = f"@{n}:{DOMAIN}"
    good = {
        "type": "m.room.member",
        "room_id": f"!junk{n}:{DOMAIN}",
        "event_id": f"$good{n}",
        "sender": guest,
        "state_key": guest,
        "content": {"membership": "join", "kind": "guest"},
        "unsigned": {"prev_content": {"membership": "leave"}},
    }
    tail = ", " + json.dumps(good) + "]}"
    count = (size - len(tail) - 20) // (len(junk) + 2)
    return ('{"events": [' + ", ".join([junk] * count) + tail).encode()


async def measure_junk(size: int) -> list[tuple[str, float, float]]:
    """Per kind of junk: (kind, json.loads, handler) in seconds, one body each."""
    out = []
    async with database_url("sqlite", "") as url, started_database(url) as database:
        inbox = db.InboxStore(database)
        api = AppserviceAPI(TOKEN, DOMAIN, BOT, inbox, Wakeup(), (), Clock())
        await _time_handler(api, make_bodies(20, 8), 10**9)  # warm up the connection and caches
        for n, (junk, kind) in enumerate(JUNK.items(), start=1):
            body = junk_body(junk, size, n)
            loads = _time_loads([body])
            handler = await _time_handler(api, [body], 2 * 10**9 + n)
            if await inbox.size() != n:
                raise AssertionError(f"the guest join after the {kind} was not kept")
            out.append((kind, loads, handler))
    return out


async def run(opts: Options) -> list[Row]:
    pin_to_one_core()
    try:
        rows: list[Row] = []
        # 100 events is Synapse's most per transaction, what a busy server sends; 8 is typical
        # of a light load (5–9 measured), where a transaction's fixed cost shows.
        for per_txn, goal_line in ((100, True), (8, False)):
            txns = (200 if opts.quick else 1000) * 100 // per_txn
            loads, parse, handler = await measure(per_txn, txns, 3 if opts.quick else 5)
            name = f"1 intake, {per_txn} ev/txn"
            rows.append(
                Row(
                    f"{name}: parse + triage",
                    fmt_rate(parse),
                    fmt_rate(loads) + " json.loads",
                    f"{parse / loads:.2f}x",
                    "",
                    None,
                )
            )
            goal = "≥0.5x, ≥100k ev/s" if goal_line else "(light load; info)"
            met = handler / loads >= 0.5 and handler >= 100_000 if goal_line else None
            rows.append(
                Row(
                    f"{name}: handler",
                    fmt_rate(handler),
                    fmt_rate(loads) + " json.loads",
                    f"{handler / loads:.2f}x",
                    goal,
                    met,
                )
            )
        size = MAX_BODY // 4 if opts.quick else MAX_BODY
        for kind, loads, handler in await measure_junk(size):
            rows.append(
                Row(
                    f"1 intake, {size >> 20} MiB body of {kind}: handler",
                    fmt_ms(handler),
                    fmt_ms(loads) + " json.loads",
                    f"{handler / loads:.2f}x",
                    "≤30 s",
                    handler <= 30,
                )
            )
        return rows
    finally:
        unpin()


if __name__ == "__main__":
    for row in asyncio.run(run(Options(quick=True))):
        print(row)
