"""5. Memory and time to ready with 100k rooms classified and 1M users' guest status cached.

guardbot runs as its real CLI (this module in child mode: `Guardbot` unchanged but for a step
after start), against the stand-in homeserver of benchmark 3 (its directory holds the same
100k rooms, so the first directory poll changes nothing), on an SQLite database holding 100k
rooms classified as listed: all of them are loaded at start, the most memory rooms can take.
- time to ready: from starting the process to `/_matrix/mau/ready` answering 200;
- RSS (VmRSS from /proc): at ready, and once the guest oracle's cache holds 1M users' status
  (numeric IDs 1..1M, as a homeserver hands out to guests, in scattered order; 1 in 50 a guest),
  entered the way a look-up's answer is (`GuestOracle._remember`). The admin API is not called
  a million times: that would time the stand-in, not guardbot's memory.
Reference, in the same run: the same process with an empty database and an empty cache.
Also shown: the time from SIGTERM to exit, since a slow stop is what a container runtime kills.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
from typing import Any

import aiohttp

from guardbot import registration
from guardbot.config import Config, create_from_example

from .common import Options, Row, rss_mb, started_database
from .directory import fake_homeserver
from .fakehs import DOMAIN, room_entry
from .synapse_env import free_port


async def _prepare_database(url: str, rooms: int) -> None:
    async with started_database(url) as database:
        rows = [(str(room_entry(n)["room_id"]), 1_700_000_000_000) for n in range(rooms)]
        async with database.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO room (room_id, listed, listed_at, checked_at)"
                " VALUES ($1, true, $2, $2)",
                rows,
            )


def _config(path: pathlib.Path, hs_url: str, port: int) -> None:
    create_from_example(str(path))
    config = Config(str(path))
    config.load()
    config["homeserver.address"] = hs_url
    config["homeserver.domain"] = DOMAIN
    config["appservice.address"] = f"http://127.0.0.1:{port}"
    config["appservice.port"] = port
    registration.fill_tokens(config)
    config.save()


async def measure(rooms: int, cache_users: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        root = pathlib.Path(tmp)
        url = f"sqlite:{root / 'guardbot.db'}"
        await _prepare_database(url, rooms)
        async with fake_homeserver("--rooms", str(rooms), "--members", "10") as hs_url:
            port = free_port()
            _config(root / "config.yaml", hs_url, port)
            report = root / "report.json"
            env = {
                **os.environ,
                "GUARDBOT_DATABASE": url,
                "BENCH_REPORT": str(report),
                "BENCH_CACHE_USERS": str(cache_users),
            }
            with (root / "guardbot.log").open("wb") as log:
                started = time.perf_counter()
                proc = subprocess.Popen(
                    [sys.executable, "-m", "bench.ready", "-c", str(root / "config.yaml"), "-n"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            result: dict[str, Any] = {}
            try:
                ready = await _wait_ready(proc, port) - started
                pathlib.Path(f"{report}.go").touch()  # now fill the cache (not before: timed)
                deadline = time.monotonic() + 300
                while not report.exists() or not report.read_text().endswith("\n"):
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((root / "guardbot.log").read_text()[-2000:])
                    await asyncio.sleep(0.1)
                result = json.loads(report.read_text())
            finally:
                stopping = time.perf_counter()
                proc.terminate()
                try:
                    proc.wait(60)
                    result["stop_seconds"] = time.perf_counter() - stopping
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                    tail = (root / "guardbot.log").read_text()[-3000:]
                    print(f"guardbot did not stop on SIGTERM; log tail:\n{tail}", file=sys.stderr)
    return result | {"ready_seconds": ready}


async def _wait_ready(proc: subprocess.Popen[bytes], port: int) -> float:
    url = f"http://127.0.0.1:{port}/_matrix/mau/ready"
    async with aiohttp.ClientSession() as session:
        while proc.poll() is None:
            try:
                async with session.get(url) as resp:
                    if resp.status == 200:
                        return time.perf_counter()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
    raise RuntimeError("guardbot exited before it was ready")


async def run(opts: Options) -> list[Row]:
    rooms, users = (10_000, 100_000) if opts.quick else (100_000, 1_000_000)
    base = await measure(0, 0)
    full = await measure(rooms, users)
    per_entry = (full["rss_cached"] - full["rss_ready"]) * 2**20 / users
    label = f"{rooms // 1000}k rooms, {users // 1000}k cached"
    ready, ready_ref = full["ready_seconds"], base["ready_seconds"]
    return [
        Row(
            f"5 time to ready, {rooms // 1000}k rooms",
            f"{ready:.2f} s",
            f"{ready_ref:.2f} s empty",
            f"{ready / ready_ref:.2f}x",
            "≤5 s",
            ready <= 5,
        ),
        Row(
            f"5 RSS, {label}",
            f"{full['rss_cached']:.0f} MB",
            f"{base['rss_ready']:.0f} MB empty",
            f"{full['rss_cached'] / base['rss_ready']:.2f}x",
            "≤150 MB",
            full["rss_cached"] <= 150,
        ),
        Row(
            f"5 RSS at ready, {rooms // 1000}k rooms",
            f"{full['rss_ready']:.0f} MB",
            f"{base['rss_ready']:.0f} MB empty",
            "",
            "(info)",
            None,
        ),
        Row(
            f"5 guest cache, {users // 1000}k users",
            f"{per_entry:.1f} B/user",
            f"filled in {full['fill_seconds']:.1f} s",
            "",
            "(info)",
            None,
        ),
        Row(
            f"5 time to stop (SIGTERM), {label}",
            f"{full.get('stop_seconds', 0):.2f} s",
            f"{base.get('stop_seconds', 0):.2f} s empty",
            "",
            "(info)",
            None,
        ),
    ]


# -- child mode: guardbot itself --------------------------------------------------------------
def child() -> None:
    from guardbot.app import Guardbot

    class Measured(Guardbot):
        async def _start(self) -> None:
            await super()._start()
            self.tasks.append(asyncio.create_task(self._fill_when_told()))

        async def _fill_when_told(self) -> None:
            # The fill holds the event loop for a while: only once the benchmark has seen ready.
            go = pathlib.Path(os.environ["BENCH_REPORT"] + ".go")
            while not go.exists():
                await asyncio.sleep(0.02)
            self._fill_and_report()

        def _fill_and_report(self) -> None:
            users = int(os.environ["BENCH_CACHE_USERS"])
            rss_ready = rss_mb()
            started = time.perf_counter()
            for k in range(users):
                number = k * 7919 % users + 1  # a permutation of 1..users (7919 is prime)
                self.guests._remember(f"@{number}:{DOMAIN}", number % 50 == 0)
            filled = time.perf_counter() - started
            report = {
                "rss_ready": rss_ready,
                "rss_cached": rss_mb(),
                "fill_seconds": filled,
                "listed": len(self.directory.listed),
            }
            pathlib.Path(os.environ["BENCH_REPORT"]).write_text(json.dumps(report) + "\n")

    Measured().run()


if __name__ == "__main__":
    child()
