"""7. A guest storm in listed `kick` rooms on a real Synapse, one process and with workers, and
the failover of an active/standby pair.

Storm: 1,000 guests (100 with --quick) join 10 listed rooms guardbot guards with `kick`, 32
joins at a time. Figures: from the first join sent to the last guest out (the kick event's
`origin_server_ts`), and from the last join answered to the last guest out. References, on the
same rooms and Synapse: the time Synapse took to take the joins, and Synapse's own removal of
the same guests — guardbot stopped, the guests back in, the rooms' `m.room.guest_access` set to
`forbidden` (Synapse then removes its guests itself): from those state events sent to the last
guest's leave. Every guest must be kicked exactly once, and nobody else.

Failover (needs PostgreSQL): two guardbots on one database behind nginx as the README
configures it (docker/nginx-guardbot-pair.conf); while guests storm the rooms, the leader is
SIGKILLed five times (twice with --quick); each takeover is timed from the kill to the
standby's /_matrix/mau/ready answering 200, and to the first kick after the kill.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from devtools.nginx_pair import nginx, nginx_pair

from .common import Options, Row, database_url, fmt_ms, percentile
from .removal import _room
from .synapse_env import Client, Env, free_port, guardbot_process, q, synapse_with_guardbot

ROOMS = 10
JOINS_AT_ONCE = 32
MEMBERS_ONLY = json.dumps({"types": ["m.room.member"]})


async def _bounded(calls: list[Callable[[], Awaitable[Any]]], limit: int) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            for attempt in range(50):
                try:
                    return await call()
                except RuntimeError as e:  # a 429 or a worker's hiccup: the storm goes on
                    if attempt == 49 or not any(c in str(e) for c in ("429", "502", "503")):
                        raise
                    await asyncio.sleep(0.2 * (attempt + 1))
            return None

    return await asyncio.gather(*(one(c) for c in calls))


async def _join_all(guests: list[Client], rooms: list[str]) -> tuple[float, float]:
    """Every guest joins its room; (first sent, last answered), wall clock."""

    def join(i: int, guest: Client) -> Callable[[], Awaitable[Any]]:
        path = f"/_matrix/client/v3/join/{q(rooms[i % len(rooms)])}"
        return lambda: guest.request("POST", path, {})

    started = time.time()
    await _bounded([join(i, g) for i, g in enumerate(guests)], JOINS_AT_ONCE)
    return started, time.time()


async def _guests_in(env: Env, rooms: list[str], guests: set[str]) -> int:
    count = 0
    for room_id in rooms:
        data = await env.admin.request(
            "GET", f"/_matrix/client/v3/rooms/{q(room_id)}/joined_members"
        )
        count += len(guests & set(data.get("joined", {})))
    return count


async def _until_out(env: Env, rooms: list[str], guests: set[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while (left := await _guests_in(env, rooms, guests)) > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{left} guests still in after {timeout:.0f}s")
        await asyncio.sleep(0.25)


async def _member_events(env: Env, room_id: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    start = ""
    for _ in range(100):
        query = {"dir": "b", "limit": "1000", "filter": MEMBERS_ONLY}
        if start:
            query["from"] = start
        path = f"/_matrix/client/v3/rooms/{q(room_id)}/messages"
        page = await env.admin.request("GET", path, query=query)
        events += page.get("chunk", [])
        if not page.get("end") or not page.get("chunk"):
            break
        start = page["end"]
    return events


async def _leaves(
    env: Env, rooms: list[str], since: float, sender: str | None
) -> list[dict[str, Any]]:
    """Leave events since `since` (s), sent by `sender` (None: the user themself)."""
    found = []
    for room_id in rooms:
        for event in await _member_events(env, room_id):
            if event["origin_server_ts"] < since * 1000:
                continue
            if (event.get("content") or {}).get("membership") != "leave":
                continue
            if (sender or event["state_key"]) == event["sender"]:
                found.append(event)
    return found


async def _listed_rooms(env: Env) -> list[str]:
    rooms = [await _room(env, listed=True, with_bot=True) for _ in range(ROOMS)]
    deadline = time.monotonic() + 60
    for room_id in rooms:  # guardbot accepted each invite
        while True:
            path = f"/_matrix/client/v3/rooms/{q(room_id)}/joined_members"
            if env.bot_user_id in (await env.admin.request("GET", path)).get("joined", {}):
                break
            if time.monotonic() > deadline:
                raise TimeoutError("guardbot did not join the rooms")
            await asyncio.sleep(0.1)
    await asyncio.sleep(2)  # and its directory poll (1 s) saw them listed
    return rooms


def _verdict(kicks: list[dict[str, Any]], guests: set[str], arrivals: int) -> str:
    """'' when every guest was kicked once per arrival and nobody else; else what is wrong."""
    per_user = Counter(e["state_key"] for e in kicks)
    wrong = [u for u in per_user if u not in guests]
    twice = [u for u, n in per_user.items() if n > arrivals]
    missed = len([u for u in guests if per_user[u] < arrivals])
    problems = []
    if wrong:
        problems.append(f"{len(wrong)} non-guests kicked")
    if twice:
        problems.append(f"{len(twice)} kicked twice")
    if missed:
        problems.append(f"{missed} not kicked")
    return ", ".join(problems)


async def _storm(opts: Options, mode: str, size: int, database: str) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        root = pathlib.Path(tmp)
        async with synapse_with_guardbot(root, workers=mode == "workers") as env:
            guests = await _bounded([env.guest for _ in range(size)], 8)
            ids = {g.user_id for g in guests}
            async with guardbot_process(
                env,
                root,
                root / "timings.jsonl",
                DATABASE=database,
                POLICY__LISTED_ROOMS="kick",
                DIRECTORY__POLL_INTERVAL="1",
            ):
                rooms = await _listed_rooms(env)
                first, joined = await _join_all(guests, rooms)
                await _until_out(env, rooms, ids, timeout=600)
                await asyncio.sleep(2)  # a repeat would show by now
                kicks = await _leaves(env, rooms, first, env.bot_user_id)
            wrong = _verdict(kicks, ids, 1)
            last_out = max(e["origin_server_ts"] for e in kicks) / 1000
            # Synapse's own removal of the same guests, from the same rooms, guardbot stopped.
            again_first, again_joined = await _join_all(guests, rooms)
            forbidden = time.time()
            await asyncio.gather(
                *(
                    env.admin.request(
                        "PUT",
                        f"/_matrix/client/v3/rooms/{q(r)}/state/m.room.guest_access/",
                        {"guest_access": "forbidden"},
                    )
                    for r in rooms
                )
            )
            await _until_out(env, rooms, ids, timeout=600)
            theirs = await _leaves(env, rooms, forbidden, None)
            synapse_done = max(e["origin_server_ts"] for e in theirs) / 1000 - forbidden
    label = f"7 storm, Synapse {mode}, {size} guests in {ROOMS} rooms"
    total, tail = last_out - first, last_out - joined
    takes = joined - first
    return [
        Row(
            f"{label}: first join → last out",
            fmt_ms(total),
            f"{fmt_ms(takes)} Synapse taking the joins",
            f"{total / takes:.2f}x",
            "(info)",
            None,
        ),
        Row(
            f"{label}: last join → last out",
            fmt_ms(tail),
            f"{fmt_ms(synapse_done)} Synapse's own removal of them (forbid)",
            f"{tail / synapse_done:.2f}x",
            "(info)",
            None,
        ),
        Row(
            f"{label}: kicks",
            f"{len(kicks)} for {len(ids)} guests",
            f"{len(theirs)} leaves by Synapse; joins again {fmt_ms(again_joined - again_first)}",
            "",
            "each guest once, no one else",
            not wrong,
        ),
    ] + ([Row(f"{label}: wrong", wrong, "", "", "", False)] if wrong else [])


async def _ready(session: aiohttp.ClientSession, port: int) -> bool:
    with contextlib.suppress(aiohttp.ClientError, OSError):
        async with session.get(f"http://127.0.0.1:{port}/_matrix/mau/ready") as resp:
            return resp.status == 200
    return False


async def _failover(opts: Options, size: int, kills: int) -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        root = pathlib.Path(tmp)
        async with (
            database_url("postgres", opts.postgres) as database,
            synapse_with_guardbot(root) as env,
        ):
            guests = await _bounded([env.guest for _ in range(size)], 8)
            ids = {g.user_id for g in guests}
            ports = [free_port(), free_port()]
            settings = {
                "DATABASE": database,
                "POLICY__LISTED_ROOMS": "kick",
                "DIRECTORY__POLL_INTERVAL": "1",
            }
            with nginx_pair(root, env.guardbot_port, ports):
                procs: dict[int, Any] = {}
                stacks = contextlib.AsyncExitStack()
                async with stacks:
                    for i, port in enumerate(ports):
                        procs[port] = await stacks.enter_async_context(
                            guardbot_process(
                                env, root, root / f"t{port}", port=port, standby=i > 0, **settings
                            )
                        )
                    rooms = await _listed_rooms(env)
                    leader, standby = ports
                    takeovers: list[float] = []
                    kill_times: list[float] = []
                    first = time.time()
                    storm = asyncio.create_task(_join_all(guests, rooms))
                    for _ in range(kills):
                        await asyncio.sleep(1.0)
                        killed = time.time()
                        os.kill(procs[leader].pid, signal.SIGKILL)
                        procs[leader].wait()
                        while not await _ready(env.session, standby):
                            await asyncio.sleep(0.02)
                        takeovers.append(time.time() - killed)
                        kill_times.append(killed)
                        procs[leader] = await stacks.enter_async_context(
                            guardbot_process(
                                env,
                                root,
                                root / f"t{leader}-{killed}",
                                port=leader,
                                standby=True,
                                **settings,
                            )
                        )
                        leader, standby = standby, leader
                    await storm
                    await _until_out(env, rooms, ids, timeout=600)
                    await asyncio.sleep(2)
                    kicks = await _leaves(env, rooms, first, env.bot_user_id)
    wrong = _verdict(kicks, ids, 1)
    stamps = sorted(e["origin_server_ts"] / 1000 for e in kicks)
    gaps = [next((t for t in stamps if t > k), k) - k for k in kill_times]
    return [
        Row(
            f"7 failover: kill → standby ready, max of {len(takeovers)}",
            fmt_ms(max(takeovers)),
            f"p50 {fmt_ms(percentile(takeovers, 50))}; leader.lease 5 s",
            "",
            "≤10 s",
            max(takeovers) <= 10,
        ),
        Row(
            "7 failover: kill → next kick, max",
            fmt_ms(max(gaps)),
            f"p50 {fmt_ms(percentile(gaps, 50))}",
            "",
            "(info)",
            None,
        ),
        Row(
            f"7 failover: {size} guests, {kills} leaders killed",
            f"{len(kicks)} kicks",
            f"{len(ids)} guests",
            "",
            "each guest once, no one else",
            not wrong,
        ),
    ] + ([Row("7 failover: wrong", wrong, "", "", "", False)] if wrong else [])


async def run(opts: Options) -> list[Row]:
    size = 100 if opts.quick else 1000
    kind = "postgres" if opts.postgres else "sqlite"
    rows: list[Row] = []
    for mode in ("single", "workers"):
        async with database_url(kind, opts.postgres) as database:
            rows += await _storm(opts, mode, size, database)
    opts.notes.append(
        f"7: guardbot on {'PostgreSQL' if opts.postgres else 'SQLite'}; joins {JOINS_AT_ONCE}"
        " at a time; workers: main + client worker + appservice sender, Redis, PostgreSQL"
    )
    if not opts.postgres or nginx() is None:
        opts.notes.append("7: failover skipped (needs --postgres and nginx)")
        return rows
    return rows + await _failover(opts, 60 if opts.quick else 300, 2 if opts.quick else 5)
