"""3. Directory scan of 1k and 10k listed rooms, and a sweep of a 10k-member room.

Against a stand-in homeserver (bench.fakehs, its own process, answers computed in advance), not
a real Synapse: creating 10k listed rooms there takes far longer than the benchmark. What is
timed is guardbot's real code over real HTTP on loopback:
- scan: `Directory.poll_once` (every /publicRooms page, the diff, and the database); the first
  poll finds every room newly listed (one row each plus a RoomListed observation in the
  inbox), later polls find no change. Reference: the same pages fetched and decoded by a bare
  aiohttp loop, the least any scan can cost.
- sweep: a queued `Sweep` of a 10,000-member room (named local and remote users, 10 guests, 10
  upgraded former guests whose member events still say `kind: guest`) carried out by the real
  `Executor`, then the kicks it queued; homeserver calls are counted by the stand-in.
Cross-check (full runs only): the 1k scan against a real Synapse with 1,000 published rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from devtools.guard_loop import guard_loop
from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.guard.directory import Directory
from guardbot.matrix.client import Homeserver

from .common import Options, Row, database_url, fmt_ms, started_database
from .fakehs import DOMAIN
from .synapse_env import synapse_with_guardbot

PAGE = 500  # directory.page_size's default; Synapse (and the stand-in) give 100 a page anyway
BOT = f"@guardbot:{DOMAIN}"


@contextlib.asynccontextmanager
async def fake_homeserver(*args: str) -> AsyncIterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fakehs", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = await asyncio.get_running_loop().run_in_executor(None, proc.stdout.readline)
        if not port.strip():
            raise RuntimeError("the stand-in homeserver did not start")
        yield f"http://127.0.0.1:{port.strip()}"
    finally:
        proc.terminate()
        proc.wait()


async def _calls(url: str, *, reset: bool = False) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        if reset:
            async with session.post(url + "/_bench/reset") as resp:
                return dict(await resp.json())
        async with session.get(url + "/_bench/calls") as resp:
            return dict(await resp.json())


async def _bare_scan(url: str, token: str = "") -> float:
    """Every page fetched and decoded, nothing else: the floor for a scan."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession(headers=headers) as session:
        started = time.perf_counter()
        since = ""
        while True:
            query = {"limit": str(PAGE)} | ({"since": since} if since else {})
            async with session.get(url + "/_matrix/client/v3/publicRooms", params=query) as resp:
                page = json.loads(await resp.read())
            since = page.get("next_batch", "")
            if not since:
                return time.perf_counter() - started


async def scan(rooms: int, repeats: int) -> tuple[float, float, float, float]:
    """(first poll, later poll, a poll with 1 % of the member counts moved, bare fetch) in
    seconds. A steady poll includes reconciliation's comparison of every room's count."""
    async with (
        fake_homeserver("--rooms", str(rooms), "--members", "10") as url,
        database_url("sqlite", "") as dburl,
    ):
        async with started_database(dburl) as database:
            hs = Homeserver(url, "as-token", BOT)
            inbox = db.InboxStore(database)
            directory = _directory(hs, database)
            await directory.load()
            started = time.perf_counter()
            newly, _ = await directory.poll_once()
            first = time.perf_counter() - started
            if len(newly) != rooms or await inbox.size() != rooms:
                raise AssertionError(f"first poll found {len(newly)} of {rooms} rooms")
            later, bare = [], []
            for _ in range(repeats):  # interleaved with the reference: same noise for both
                started = time.perf_counter()
                newly, gone = await directory.poll_once()
                later.append(time.perf_counter() - started)
                if newly or gone:
                    raise AssertionError("a steady directory changed")
                bare.append(await _bare_scan(url))
            moved = []
            for _ in range(repeats):
                # As if 1 % of the rooms had someone come or go since: what guardbot knew differs.
                for room_id in sorted(directory.listed)[: rooms // 100]:
                    directory._members[room_id] = -1
                started = time.perf_counter()
                await directory.poll_once()
                moved.append(time.perf_counter() - started)
                if await inbox.size() != rooms + len(moved) * (rooms // 100):
                    raise AssertionError("the moved counts did not reach the inbox")
            await hs.close()
    return first, min(later), min(moved), min(bare)


async def real_synapse_scan(rooms: int, repeats: int) -> tuple[float, float, float]:
    """The same scan against a real Synapse holding `rooms` published rooms (a cross-check of
    the stand-in; Synapse serves /publicRooms from its own cache)."""
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        async with synapse_with_guardbot(pathlib.Path(tmp)) as env:
            body = {"preset": "public_chat", "visibility": "public"}
            made = 0
            while made < rooms:  # a few at a time: Synapse takes ~50 ms a room on 2 cores
                batch = min(8, rooms - made)
                await asyncio.gather(
                    *(
                        env.admin.request("POST", "/_matrix/client/v3/createRoom", body)
                        for _ in range(batch)
                    )
                )
                made += batch
            await _wait_listed(env.synapse.base_url, env.admin.token, rooms)
            async with database_url("sqlite", "") as dburl, started_database(dburl) as database:
                # Synapse wants a token for /publicRooms; the admin's does as well as guardbot's.
                hs = Homeserver(env.synapse.base_url, env.admin.token, BOT)
                directory = _directory(hs, database)
                started = time.perf_counter()
                newly, _ = await directory.poll_once()
                first = time.perf_counter() - started
                if len(newly) != rooms:
                    raise AssertionError(f"Synapse listed {len(newly)} of {rooms} rooms")
                later, bare = [], []
                for _ in range(repeats):
                    started = time.perf_counter()
                    await directory.poll_once()
                    later.append(time.perf_counter() - started)
                    bare.append(await _bare_scan(env.synapse.base_url, env.admin.token))
                await hs.close()
    return first, min(later), min(bare)


async def _wait_listed(url: str, token: str, rooms: int) -> None:
    """Synapse's directory shows a new room a moment after it is made."""
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for _ in range(200):
            query = {"limit": "1"}
            async with session.get(url + "/_matrix/client/v3/publicRooms", params=query) as resp:
                if (await resp.json()).get("total_room_count_estimate") == rooms:
                    return
            await asyncio.sleep(0.05)
    raise AssertionError("Synapse never listed every room")


def _directory(hs: Homeserver, database: db.Database) -> Directory:
    return Directory(
        hs, db.RoomStore(database), Clock(), Wakeup(), poll_interval=10, page_size=PAGE
    )


async def sweep(members: int, guests: int, former: int) -> tuple[float, dict[str, Any]]:
    """(seconds from a room's listing to its last kick, calls the homeserver saw): the poll's
    observation, its sweep, the members found and the kicks, through the evaluator and the
    executor as in guardbot."""
    args = [
        "--rooms",
        "1",
        "--members",
        str(members),
        "--guests",
        str(guests),
        "--former-guests",
        str(former),
    ]
    async with fake_homeserver(*args) as url, database_url("sqlite", "") as dburl:
        async with started_database(dburl) as database:
            hs = Homeserver(url, "as-token", BOT)
            guard = await guard_loop(database, hs)  # the kick policy, with admin rights
            await guard.directory.poll_once()  # the room is listed: its observation waits
            await _calls(url, reset=True)
            started = time.perf_counter()
            await guard.run_until_idle()
            seconds = time.perf_counter() - started
            calls = await _calls(url)
            await hs.close()
    return seconds, calls


async def run(opts: Options) -> list[Row]:
    rows: list[Row] = []
    repeats = 2 if opts.quick else 5
    for rooms in (1_000, 10_000):
        first, later, moved, bare = await scan(rooms, repeats)
        if rooms == 10_000:
            # Reconciliation: the counts come with the pages; a moved one costs a row update
            # and an inbox row, and its room's member list only later, in a sweep.
            rows.append(
                Row(
                    "3 reconcile 10k rooms per poll, none / 1 % moved",
                    f"{fmt_ms(later - bare)} / {fmt_ms(moved - bare)}",
                    fmt_ms(bare) + " bare fetch",
                    f"{later / bare:.2f}x / {moved / bare:.2f}x",
                    "O(rooms), no request",
                    None,
                )
            )
        for what, seconds in (("no change", later), ("all new", first)):
            goal, met = ("≤2 s", seconds <= 2.0) if rooms == 10_000 else ("(info)", None)
            rows.append(
                Row(
                    f"3 scan {rooms // 1000}k rooms, {what}",
                    fmt_ms(seconds),
                    fmt_ms(bare) + " bare fetch",
                    f"{seconds / bare:.2f}x",
                    goal,
                    met,
                )
            )
    if not opts.quick:
        first, later, bare = await real_synapse_scan(1_000, repeats)
        for what, seconds in (("no change", later), ("all new", first)):
            rows.append(
                Row(
                    f"3 scan 1k rooms on real Synapse, {what}",
                    fmt_ms(seconds),
                    fmt_ms(bare) + " bare fetch",
                    f"{seconds / bare:.2f}x",
                    "(info)",
                    None,
                )
            )
    members, guests, former = 10_000, 10, 10
    seconds, calls = await sweep(members, guests, former)
    admin = calls.get("admin", 0)
    per_k = admin / (members / 1000)
    rows.append(
        Row(
            "3 sweep 10k members: admin calls",
            f"{admin} ({per_k:.1f}/1k)",
            f"{members} members, {guests + former} numeric",
            "",
            "≤2 per 1k",
            per_k <= 2,
        )
    )
    kicked = calls.get("kick", 0)
    rows.append(
        Row(
            "3 sweep 10k members: kicks",
            str(kicked),
            f"{guests} guests",
            "",
            "= guests",
            kicked == guests and len(calls.get("kicked", [])) == guests,
        )
    )
    other = {k: v for k, v in calls.items() if k not in ("admin", "kick", "kicked")}
    rows.append(
        Row(
            "3 sweep 10k members: time",
            fmt_ms(seconds),
            ", ".join(f"{v} {k}" for k, v in sorted(other.items())),
            "",
            "(info)",
            None,
        )
    )
    return rows
