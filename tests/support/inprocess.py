"""guardbot's real HTTP application (built by `Guardbot.prepare`, every route and middleware as
in production) served in-process on a real SQLite database, for fuzzing at a volume a
subprocess would make slow. It runs in a thread with its own event loop so that hypothesis'
tests stay plain functions; requests go over a raw socket so that any bytes can be sent.

No background loop runs (no evaluator): what a transaction stored stays in the inbox to be
looked at. Also here: a scratch database for it, and its settings against a real Synapse.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import pathlib
import secrets
import socket
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web
from yarl import URL

from guardbot.app import Guardbot
from guardbot.config import Config, create_from_example, load
from guardbot.leader import Stage
from guardbot.logs import RedactSecrets, secrets_of

from .homeserver import Homeserver
from .postgres import POSTGRES

T = TypeVar("T")


class LogText(logging.Handler):
    """Everything guardbot logs in this process, formatted, for the secret scan."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)


class InProcessGuardbot:
    def __init__(self, workdir: pathlib.Path, env: dict[str, str]) -> None:
        path = workdir / "config.yaml"
        create_from_example(str(path))
        self.config = load(str(path), save=False, environ=env)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.port = 0
        self.log = LogText()
        # As prepare_log does in production: the config's own secrets are redacted on every
        # handler. Anything else (users' tokens, passwords) must simply never be logged.
        self.log.addFilter(RedactSecrets(secrets_of(self.config)))
        self._runner: web.AppRunner | None = None
        self._holding: asyncio.Task[None] | None = None
        self._level = logging.NOTSET

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def start(self) -> None:
        logger = logging.getLogger("guardbot")
        self._level = logger.level
        logger.addHandler(self.log)
        logger.setLevel(logging.DEBUG)  # the scan must see everything guardbot could log
        self.thread.start()
        self.run(self._start())

    async def _start(self) -> None:
        self.app = Guardbot()
        self.app.config = self.config
        self.app.prepare()
        await self.app.database.start()
        # Served as the leader serves it (a standby answers only reads): the lease taken and
        # held, though no other loop runs.
        await self.app.leadership.elect(while_waiting=self.app._load_view)
        self._holding = asyncio.create_task(self.app.leadership.hold())
        self.app.leadership.stage = Stage.READY  # no loops: the test drives what it needs
        self._runner = web.AppRunner(self.app.web, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        try:
            self.run(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            logging.getLogger("guardbot").removeHandler(self.log)
            logging.getLogger("guardbot").setLevel(self._level)

    async def _stop(self) -> None:
        if self._holding is not None:
            self._holding.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
        await self.app.hs.close()
        await self.app.database.stop()

    def query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        async def fetch() -> list[dict[str, Any]]:
            return [dict(r) for r in await self.app.database.fetch(sql, *args)]

        return self.run(fetch())


@contextlib.contextmanager
def scratch_database(kind: str, workdir: pathlib.Path) -> Iterator[str]:
    """A database URL for one in-process guardbot: SQLite in `workdir`, or a PostgreSQL
    database made and dropped here (skipped without GUARDBOT_TEST_POSTGRES)."""
    if kind == "sqlite":
        yield f"sqlite:{workdir / 'guardbot.db'}"
        return
    if not POSTGRES:
        pytest.skip("GUARDBOT_TEST_POSTGRES is not set")
    name = "guardbot_fuzz_" + secrets.token_hex(6)

    async def admin(sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(POSTGRES)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    # A loop of its own: this runs from plain (non-async) fixtures.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, admin(f'CREATE DATABASE "{name}"')).result()
        try:
            yield str(URL(POSTGRES).with_path("/" + name))
        finally:
            pool.submit(
                asyncio.run, admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            ).result()


def pwlu_settings(hs: Homeserver, database: str) -> dict[str, str]:
    """The environment of an in-process guardbot with named guests on, against `hs`."""
    config = Config(str(hs.config_path))
    config.load()
    return {
        "GUARDBOT_DATABASE": database,
        "GUARDBOT_HOMESERVER__ADDRESS": hs.synapse.base_url,
        "GUARDBOT_HOMESERVER__DOMAIN": hs.synapse.server_name,
        "GUARDBOT_APPSERVICE__AS_TOKEN": hs.as_token,
        "GUARDBOT_APPSERVICE__HS_TOKEN": hs.hs_token,
        "GUARDBOT_ANTISPAM__TOKEN": hs.antispam_token,
        "GUARDBOT_PWLU__ENABLED": "true",
        "GUARDBOT_PWLU__SECRET": config["pwlu.secret"],
        "GUARDBOT_PWLU__PUBLIC_URL": "http://127.0.0.1:1",
        "GUARDBOT_PWLU__RATE_LIMIT__PER_SECOND": "100000",
        "GUARDBOT_PWLU__RATE_LIMIT__BURST_COUNT": "100000",
    }
