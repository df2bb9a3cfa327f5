"""A real Synapse on loopback with guardbot registered as its appservice, and guardbot itself as
a real process (`python -m guardbot`): what the integration and fault suites run against. The
fixtures that hand these out live in tests/integration/conftest.py and tests/fault/conftest.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from ruamel.yaml import YAML

from devtools.local_synapse import LocalSynapse
from devtools.synapse_workers import WorkerSynapse
from guardbot.registration import door_module

from .matrix_client import User


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Homeserver:
    synapse: LocalSynapse
    admin: User
    bot_user_id: str
    config_path: pathlib.Path
    guardbot_port: int
    as_token: str
    hs_token: str
    antispam_token: str

    async def user(self, localpart: str) -> User:
        user_id, token = await self.synapse.register_user(localpart, "pw-" + localpart)
        return User(self.synapse.base_url, user_id, token)

    async def guest(self) -> User:
        user_id, token = await self.synapse.register_guest()
        return User(self.synapse.base_url, user_id, token)


@contextlib.asynccontextmanager
async def running_homeserver(
    root: pathlib.Path,
    extra_config: dict[str, Any],
    registration: dict[str, Any] | None = None,
    *,
    door: bool = False,
    workers: bool = False,
    x_forwarded: bool = False,
    guardbot_listener: bool = False,
    federation: bool = False,
    metrics: bool = False,
) -> AsyncIterator[Homeserver]:
    """A Synapse with guardbot's registration (made by `guardbot -g`, then `registration`'s keys
    put over it, e.g. `rate_limited: True`) and an admin user, for the session fixture or a test
    that needs a homeserver configured its own way. With `door`, Synapse asks guardbot before
    joins, invites and publications (synapse-http-antispam, the entry `guardbot -g` prints).
    With `workers`, it is a Synapse with workers behind a routing proxy, on a PostgreSQL
    database of its own (devtools/synapse_workers.py), dropped at the end. With
    `x_forwarded`, its listener believes X-Forwarded-For; with `guardbot_listener`, guardbot
    talks to a second listener of its own that does (docs/named-guests.md). With
    `federation`, it federates with other Synapses on loopback (its name is 127.0.0.1:<port>);
    with `metrics`, it serves its Prometheus metrics on `synapse.metrics_port`."""
    kind = WorkerSynapse if workers else LocalSynapse
    synapse = kind(
        root / "synapse", appservice_files=[root / "registration.yaml"], extra_config=extra_config
    )
    synapse.x_forwarded = x_forwarded
    if guardbot_listener:
        synapse.guardbot_listener = free_port()
    if federation:
        synapse.enable_federation()
    if metrics:
        synapse.metrics_port = free_port()
    port = free_port()
    config_path = root / "config.yaml"
    config = synapse.register_guardbot(config_path, port)
    if door:
        module = door_module(config, config["antispam.token"])
        synapse.extra_config["modules"] = [module]
    if registration:
        path = root / "registration.yaml"  # JSON is YAML: Synapse reads it as it is
        path.write_text(json.dumps({**YAML(typ="safe").load(path.read_text()), **registration}))
    try:
        await synapse.start()  # inside: a worker set that fails half-way is still cleaned up
        admin_id, admin_token = await synapse.register_user("admin", "admin-pw", admin=True)
        admin = User(synapse.base_url, admin_id, admin_token)
        # Register guardbot's user the way it does itself, so it can be made admin up front.
        bot_user_id = await synapse.register_appservice_user(
            config["appservice.as_token"], "guardbot"
        )
        await synapse.make_admin(admin_token, bot_user_id)
        yield Homeserver(
            synapse,
            admin,
            bot_user_id,
            config_path,
            port,
            config["appservice.as_token"],
            config["appservice.hs_token"],
            config["antispam.token"],
        )
    finally:
        await synapse.stop()
        if isinstance(synapse, WorkerSynapse):
            await synapse.drop_database()


class GuardbotProcess:
    """guardbot as an operator runs it: the real CLI in its own process."""

    def __init__(
        self,
        hs: Homeserver,
        workdir: pathlib.Path,
        env: dict[str, str],
        port: int | None = None,
    ) -> None:
        """`port`: where it listens, when not where the homeserver sends (a proxy in front
        of an active/standby set listens there)."""
        self.hs = hs
        self.workdir = workdir
        self.log_path = workdir / f"guardbot-{time.monotonic_ns()}.log"
        self.env = {**os.environ, **env}
        if port is not None:
            self.env["GUARDBOT_APPSERVICE__PORT"] = str(port)
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port or hs.guardbot_port}"

    async def start(self, timeout: float = 30, *, standby: bool = False) -> None:
        """Until it is ready (leads), or with `standby` until it is live and stands by."""
        path = "/_matrix/mau/live" if standby else "/_matrix/mau/ready"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "guardbot", "-c", str(self.hs.config_path), "-n"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.workdir,
            )
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"guardbot exited during start-up:\n{self.log()}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + path) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise RuntimeError(f"guardbot not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def _end(self, sig: int) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        for _ in range(200):
            if self.proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        self.proc.kill()
        self.proc.wait()

    async def stop(self) -> None:
        await self._end(signal.SIGTERM)

    async def kill(self) -> None:
        """A crash: no shutdown code runs."""
        await self._end(signal.SIGKILL)

    async def is_ready(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with aiohttp.ClientSession() as session:
                async with session.get(self.url + "/_matrix/mau/ready") as resp:
                    return resp.status == 200
        return False


# What the start_guardbot fixture hands a test.
StartGuardbot = Callable[..., Awaitable[GuardbotProcess]]


@contextlib.asynccontextmanager
async def guardbot_starter(
    homeserver: Homeserver, workdir: pathlib.Path
) -> AsyncIterator[StartGuardbot]:
    """start(POLICY__LISTED_ROOMS="kick", ...) runs guardbot with those config overrides (as
    GUARDBOT_* environment variables) and a database of this test's own; all are stopped after,
    and their logs checked for tokens."""
    started: list[GuardbotProcess] = []

    async def start(database: str = "", **overrides: object) -> GuardbotProcess:
        env = {
            "GUARDBOT_DATABASE": database or f"sqlite:{workdir / 'guardbot.db'}",
            "GUARDBOT_DIRECTORY__POLL_INTERVAL": "1",
            "GUARDBOT_LOGGING__LOGGERS__GUARDBOT__LEVEL": "DEBUG",
        }
        env.update({f"GUARDBOT_{k}": str(v) for k, v in overrides.items()})
        proc = GuardbotProcess(homeserver, workdir, env)
        started.append(proc)
        await proc.start()
        return proc

    try:
        yield start
    finally:  # a failed test must not leave its guardbots running for the rest of the session
        for proc in started:
            await proc.stop()
    for proc in started:  # secrets stay secret, whatever happened in the test
        log = proc.log()
        for secret in (homeserver.as_token, homeserver.hs_token, homeserver.antispam_token):
            assert secret not in log, "a token reached guardbot's log"
