"""Benchmark 6: the door (Synapse asks guardbot before a join).

- Its decision inside guardbot, `Door.refuses`, for the two kinds of joiner that make up
  nearly all traffic: users who cannot be guests (no numeric local ID: no I/O at all) and
  guests whose verdict is cached, in a listed room. The homeserver stand-in answers at once, so
  this is guardbot's own time.
- A registered user's join on a real Synapse, with the door (synapse-http-antispam asking
  guardbot) and without it, joins alternating between the two homeservers so both see the
  same noise. Goal: at most 1.2x the join without the door.
"""

from __future__ import annotations

import pathlib
import sqlite3
import tempfile
import time
from typing import Any

from devtools.guard_loop import guard_loop
from guardbot.core.clock import Clock
from guardbot.core.policy import Policy
from guardbot.guard.door import Door
from guardbot.matrix.client import Homeserver

from .common import Options, Row, database_url, percentile, started_database
from .synapse_env import Client, Env, guardbot_process, q, synapse_with_guardbot

ROOM = "!listed:example.org"


class FrozenClock(Clock):
    """Time stands still: a cached "guest" answer stays fresh for the whole run."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def monotonic(self) -> float:
        return self.at


class Instant(Homeserver):
    def __init__(self) -> None:
        super().__init__("http://bench.invalid", "as-token", "@guardbot:example.org")

    async def admin_user(self, user_id: str) -> dict[str, Any] | None:
        return {"name": user_id, "is_guest": True, "admin": False}


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} µs"


async def decision_times(n: int) -> dict[str, list[float]]:
    async with database_url("sqlite", "") as url, started_database(url) as database:
        clock = FrozenClock()
        guard = await guard_loop(
            database, Instant(), listed=[ROOM], policy=Policy.KICK, clock=clock
        )
        door = Door(
            token="t",
            domain="example.org",
            rooms=guard.rooms,
            inbox=guard.inbox,
            inbox_wakeup=guard.inbox_wakeup,
            guests=guard.guests,
            settings=guard.decisions.settings,
            clock=clock,
            timeout=0.5,
            refusal="no",
        )
        times: dict[str, list[float]] = {"registered user": [], "cached guest": []}
        await door.refuses("@1:example.org", ROOM)  # the guest's verdict, fetched once
        for i in range(n):
            for what, user in (
                ("registered user", f"@user{i}:example.org"),
                ("cached guest", "@1:example.org"),
            ):
                started = time.perf_counter()
                refused = await door.refuses(user, ROOM)
                times[what].append(time.perf_counter() - started)
                if refused != (what == "cached guest"):
                    raise AssertionError(f"wrong answer for {what}")
    return times


async def _room(env: Env, listed: bool) -> str:
    body = {"preset": "public_chat", "visibility": "public" if listed else "private"}
    return (await env.admin.request("POST", "/_matrix/client/v3/createRoom", body))["room_id"]


async def _user(env: Env, name: str) -> Client:
    user_id, token = await env.synapse.register_user(name, "pw-" + name)
    return Client(env.session, env.synapse.base_url, user_id, token)


async def _join_leave(user: Client, room_id: str) -> float:
    started = time.perf_counter()
    await user.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})
    joined = time.perf_counter() - started
    await user.request("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/leave", {})
    return joined


async def joins(samples: int) -> tuple[list[float], list[float]]:
    """(join times with the door, without it)."""
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        root = pathlib.Path(tmp)
        for name in ("door", "plain", "door-gb", "plain-gb"):
            (root / name).mkdir()
        async with (
            synapse_with_guardbot(root / "door", door=True) as with_door,
            synapse_with_guardbot(root / "plain") as without,
        ):
            async with (
                guardbot_process(
                    with_door, root / "door-gb", root / "t1.jsonl", POLICY__LISTED_ROOMS="kick"
                ),
                guardbot_process(
                    without, root / "plain-gb", root / "t2.jsonl", POLICY__LISTED_ROOMS="kick"
                ),
            ):
                rooms = [await _room(with_door, True), await _room(without, True)]
                users = [await _user(with_door, "joiner"), await _user(without, "joiner")]
                for _ in range(4):  # warm-up: connections, caches, the door's room look-up
                    for user, room in zip(users, rooms, strict=True):
                        await _join_leave(user, room)
                door_times, plain_times = [], []
                for _ in range(samples):
                    door_times.append(await _join_leave(users[0], rooms[0]))
                    plain_times.append(await _join_leave(users[1], rooms[1]))
            # The door records the homeserver's first call: proof the joins were asked about.
            with sqlite3.connect(root / "door-gb" / "guardbot.db") as conn:
                if not conn.execute("SELECT what FROM door_seen").fetchall():
                    raise AssertionError("the homeserver never called the door")
    return door_times, plain_times


async def run(opts: Options) -> list[Row]:
    rows: list[Row] = []
    times = await decision_times(2_000 if opts.quick else 20_000)
    for what, values in times.items():
        rows.append(
            Row(
                f"6 door decision, {what}: p50 / p99",
                f"{fmt_us(percentile(values, 50))} / {fmt_us(percentile(values, 99))}",
                f"{len(values)} decisions, homeserver answers at once",
                "",
                "(info)",
                None,
            )
        )
    door_times, plain_times = await joins(10 if opts.quick else 40)
    with_door, without = percentile(door_times, 50), percentile(plain_times, 50)
    rows.append(
        Row(
            "6 registered user's join on real Synapse, p50: with the door",
            f"{with_door * 1000:.1f} ms",
            f"{without * 1000:.1f} ms without the door",
            f"{with_door / without:.2f}x",
            "≤1.2x",
            with_door / without <= 1.2,
        )
    )
    rows.append(
        Row(
            "6 registered user's join on real Synapse, p95: with the door",
            f"{percentile(door_times, 95) * 1000:.1f} ms",
            f"{percentile(plain_times, 95) * 1000:.1f} ms without the door",
            f"{percentile(door_times, 95) / percentile(plain_times, 95):.2f}x",
            "(info)",
            None,
        )
    )
    return rows
