"""A real Synapse (one process, or with workers) with guardbot registered, and guardbot as a
real process, for benchmarks 2, 4, 6 and 7.

The same set-up as tests/support/homeserver.py (`guardbot -g` writes the registration, the bot
registers and is made a server admin up front), kept here so the test helpers stay as they are.
guardbot runs through bench.timed_guardbot: the real CLI, plus timestamps at two points.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from devtools.local_synapse import LocalSynapse
from guardbot.registration import door_module

# Joins, state changes and syncs as fast as the benchmark sends them.
LOOSE = {"per_second": 10000, "burst_count": 100000}


def q(value: str) -> str:
    return quote(value, safe="")


class Client:
    """A Matrix user on one kept-alive connection, so the client adds little to timings."""

    def __init__(
        self, session: aiohttp.ClientSession, base_url: str, user_id: str, token: str
    ) -> None:
        self.session = session
        self.base_url = base_url
        self.user_id = user_id
        self.token = token

    async def request(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = self.base_url + path
        async with self.session.request(
            method, url, json=body, params=query, headers=headers
        ) as resp:
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {data}")
            return data


@dataclass
class Env:
    synapse: LocalSynapse
    session: aiohttp.ClientSession
    admin: Client
    bot_user_id: str
    config_path: pathlib.Path
    guardbot_port: int

    async def guest(self) -> Client:
        user_id, token = await self.synapse.register_guest()
        return Client(self.session, self.synapse.base_url, user_id, token)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def synapse_with_guardbot(
    root: pathlib.Path,
    extra_config: dict[str, Any] | None = None,
    *,
    door: bool = False,
    workers: bool = False,
    guardbot_listener: bool = False,
) -> AsyncIterator[Env]:
    """Synapse (its config with `extra_config` put over it) with guardbot registered; with
    `door`, Synapse asks guardbot before joins (synapse-http-antispam, as `guardbot -g` says);
    with `workers`, Synapse with workers behind its routing proxy (devtools/synapse_workers)."""
    extra = {
        "rc_joins_per_room": LOOSE,
        "rc_message": LOOSE,
        "rc_joins": {"local": LOOSE, "remote": LOOSE},
        **(extra_config or {}),
    }
    kind: type[LocalSynapse] = LocalSynapse
    if workers:
        from devtools.synapse_workers import WorkerSynapse

        kind = WorkerSynapse
    synapse = kind(
        root / "synapse", appservice_files=[root / "registration.yaml"], extra_config=extra
    )
    if guardbot_listener:  # docs/named-guests.md: a listener for guardbot that believes it
        synapse.guardbot_listener = free_port()
    port = free_port()
    config_path = root / "config.yaml"
    config = synapse.register_guardbot(config_path, port)
    if door:
        synapse.extra_config["modules"] = [door_module(config, config["antispam.token"])]
    await synapse.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin_id, admin_token = await synapse.register_user("admin", "admin-pw", admin=True)
            admin = Client(session, synapse.base_url, admin_id, admin_token)
            bot_user_id = await synapse.register_appservice_user(
                config["appservice.as_token"], "guardbot"
            )
            await synapse.make_admin(admin_token, bot_user_id)
            yield Env(synapse, session, admin, bot_user_id, config_path, port)
    finally:
        await synapse.stop()
        drop = getattr(synapse, "drop_database", None)
        if drop is not None:
            await drop()


@contextlib.asynccontextmanager
async def guardbot_process(
    env: Env,
    workdir: pathlib.Path,
    timings: pathlib.Path,
    *,
    port: int | None = None,
    standby: bool = False,
    **overrides: str,
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """guardbot (the real CLI, timed) with GUARDBOT_* overrides, until the block ends. `port`:
    its own (behind a proxy); `standby`: started once live, not once ready (leading)."""
    port = port or env.guardbot_port
    variables = {
        **os.environ,
        "GUARDBOT_DATABASE": f"sqlite:{workdir / 'guardbot.db'}",
        "GUARDBOT_APPSERVICE__PORT": str(port),
        "BENCH_TIMINGS": str(timings),
        **{f"GUARDBOT_{k}": v for k, v in overrides.items()},
    }
    log = (workdir / f"guardbot-{port}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.timed_guardbot", "-c", str(env.config_path), "-n"],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=variables,
        cwd=pathlib.Path.cwd(),
    )
    try:
        url = f"http://127.0.0.1:{port}/_matrix/mau/" + ("live" if standby else "ready")
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"guardbot exited; see {log.name}")
            with contextlib.suppress(aiohttp.ClientError):
                async with env.session.get(url) as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline:
                raise RuntimeError("guardbot not ready after 60s")
            await asyncio.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
