"""A throwaway Synapse with workers, as large deployments run it: the main process, a
generic_worker serving the client API ("client1"), another sending the appservice transactions
("appservice1", `notify_appservices_from_worker`), all on a PostgreSQL database of their own and
Redis, behind a routing reverse proxy (devtools/worker_proxy.py) that `base_url` points to.

The same interface as LocalSynapse, so tests/support/homeserver.py uses it as it is. What differs
(/work/shared/notes/synapse-facts.md, "Workers"): the appservice ping must reach the worker
that sends transactions, or its retry back-off is not cut short; the directory publication,
account and most admin endpoints are served by main only; Redis channels are named after the
server name, so every instance gets its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pathlib
import secrets
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import asyncpg

from .local_synapse import _LOG_TAIL_LINES, LocalSynapse, _free_port, wait_healthy

POSTGRES_DEFAULT = "postgres://postgres@127.0.0.1:5432/postgres"
_PROXY_SCRIPT = pathlib.Path(__file__).resolve().with_name("worker_proxy.py")


@dataclass
class Worker:
    """One generic_worker process: its name, the client listener the proxy sends to, its log."""

    name: str
    port: int
    config_path: pathlib.Path
    log_path: pathlib.Path
    proc: asyncio.subprocess.Process | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


async def _terminate(proc: asyncio.subprocess.Process | None, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; a no-op for a process already gone."""
    if proc is None or proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), grace)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()


def _tail(path: pathlib.Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log file)"


class WorkerSynapse(LocalSynapse):
    """Run, stop and talk to a disposable Synapse with workers whose files live in `workdir`
    and whose data lives in a PostgreSQL database made on the first start. stop() ends every
    process and start() brings them back on the same database; drop_database() at the very
    end removes it."""

    CLIENT = "client1"
    APPSERVICE = "appservice1"

    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        server_name: str | None = None,
        appservice_files: Sequence[pathlib.Path] = (),
        extra_config: dict[str, Any] | None = None,
        port: int | None = None,
        python: str = sys.executable,
        postgres: str | None = None,
        redis_host: str = "127.0.0.1",
        redis_port: int = 6379,
    ) -> None:
        # Synapse names its Redis channels after the server name: one per instance, or two
        # test homeservers would hear each other's replication.
        super().__init__(
            workdir,
            server_name=server_name or f"w{secrets.token_hex(4)}.test",
            appservice_files=appservice_files,
            extra_config=extra_config,
            port=port,
            python=python,
        )
        self.postgres = postgres or os.environ.get("GUARDBOT_TEST_POSTGRES") or POSTGRES_DEFAULT
        self.database_name = "synapse_w_" + secrets.token_hex(6)
        self.database_created = False
        self.redis_host, self.redis_port = redis_host, redis_port
        self.main_port = _free_port()
        self.replication_port = _free_port()
        self.replication_secret = secrets.token_hex(16)
        self.workers = {
            name: Worker(
                name,
                _free_port(),
                self.workdir / f"{name}.yaml",
                self.workdir / f"{name}.log",
            )
            for name in (self.CLIENT, self.APPSERVICE)
        }
        self.proxy_log_path = self.workdir / "proxy.log"
        self._proxy: asyncio.subprocess.Process | None = None

    # ---- configuration -------------------------------------------------------------

    @property
    def main_url(self) -> str:
        """The main process itself, past the proxy."""
        return f"http://127.0.0.1:{self.main_port}"

    @property
    def log_paths(self) -> list[pathlib.Path]:
        """Every log: main's (log_path), the workers', the proxy's request log."""
        return [self.log_path, *(w.log_path for w in self.workers.values()), self.proxy_log_path]

    def _database_args(self) -> dict[str, Any]:
        url = urlsplit(self.postgres)
        args: dict[str, Any] = {
            "user": unquote(url.username or "postgres"),
            "host": url.hostname or "127.0.0.1",
            "port": url.port or 5432,
            "database": self.database_name,
            # Three processes share the server with the rest of the test suite.
            "cp_min": 1,
            "cp_max": 5,
        }
        if url.password:
            args["password"] = unquote(url.password)
        return args

    def _default_config(self) -> dict[str, Any]:
        config = super()._default_config()
        http = {"type": "http", "bind_addresses": ["127.0.0.1"], "tls": False}
        config["listeners"] = [
            # The proxy sets X-Forwarded-For, as a real one does.
            {
                **http,
                "port": self.main_port,
                "x_forwarded": True,
                "resources": [{"names": ["client"], "compress": False}],
            },
            {**http, "port": self.replication_port, "resources": [{"names": ["replication"]}]},
        ]
        config["database"] = {"name": "psycopg2", "args": self._database_args()}
        config["redis"] = {"enabled": True, "host": self.redis_host, "port": self.redis_port}
        config["instance_map"] = {"main": {"host": "127.0.0.1", "port": self.replication_port}}
        config["worker_replication_secret"] = self.replication_secret
        config["notify_appservices_from_worker"] = self.APPSERVICE
        return config

    def _worker_config(self, worker: Worker) -> dict[str, Any]:
        log_config = self.workdir / f"{worker.name}-log.yaml"
        log = self._log_config()
        log["handlers"]["file"]["filename"] = str(worker.log_path)
        log_config.write_text(json.dumps(log, indent=2))
        return {
            "worker_app": "synapse.app.generic_worker",
            "worker_name": worker.name,
            # The appservice worker listens too: the appservice ping must reach it.
            "worker_listeners": [
                {
                    "type": "http",
                    "port": worker.port,
                    "bind_addresses": ["127.0.0.1"],
                    "x_forwarded": True,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "worker_log_config": str(log_config),
        }

    def write_config(self) -> pathlib.Path:
        path = super().write_config()
        for worker in self.workers.values():
            worker.config_path.write_text(json.dumps(self._worker_config(worker), indent=2))
        return path

    # ---- database ------------------------------------------------------------------

    async def create_database(self) -> None:
        """The fresh database Synapse wants for PostgreSQL (C collation, UTF8); once."""
        if self.database_created:
            return
        conn = await asyncpg.connect(self.postgres)
        try:
            await conn.execute(
                f"CREATE DATABASE \"{self.database_name}\" ENCODING 'UTF8' "
                "LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0"
            )
        finally:
            await conn.close()
        self.database_created = True

    async def drop_database(self) -> None:
        """Remove the database (stop() first). Safe to call when none was made."""
        if not self.database_created:
            return
        conn = await asyncpg.connect(self.postgres)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{self.database_name}" WITH (FORCE)')
        finally:
            await conn.close()
        self.database_created = False

    # ---- process lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """Main, every worker and the proxy are up."""
        return (
            super().running
            and all(w.running for w in self.workers.values())
            and self._proxy is not None
            and self._proxy.returncode is None
        )

    @property
    def pids(self) -> dict[str, int]:
        """Process IDs by name: "main", each worker's name, "proxy"; only those running."""
        procs = {"main": self._proc, **{n: w.proc for n, w in self.workers.items()}}
        procs["proxy"] = self._proxy
        return {n: p.pid for n, p in procs.items() if p is not None and p.returncode is None}

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        parts = [f"--- main ({self.log_path.name}) ---\n" + _tail(self.log_path, lines)]
        for w in self.workers.values():
            parts.append(f"--- {w.name} ({w.log_path.name}) ---\n" + _tail(w.log_path, lines))
        return "\n".join(parts)

    async def start(self, timeout: float = 90) -> None:
        """Proxy, then main (it prepares the database schema, which workers refuse to start
        without), then both workers at once; returns when all answer GET /health."""
        if self.running:
            return
        # A partial set (a worker died, or stop_synapse() left the proxy): start Synapse's
        # processes again, cleanly; the proxy keeps running if it is.
        await self.stop_synapse()
        await self.create_database()
        self.write_config()
        await self._start_proxy()
        try:
            # LocalSynapse.start runs main and waits for /health through the proxy (routed
            # to main), so the suite's guard on who may start a Synapse applies here too.
            await super().start(timeout)
            await asyncio.gather(*(self.start_worker(n, timeout) for n in self.workers))
        except BaseException:
            await self.stop()
            raise

    async def start_worker(self, name: str, timeout: float = 90) -> None:
        """Start one worker (not running) and wait until it answers GET /health."""
        worker = self.workers[name]
        if worker.running:
            return
        with worker.log_path.open("ab") as log:
            worker.proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "synapse.app.generic_worker",
                "-c",
                str(self.config_path),
                "-c",
                str(worker.config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=str(self.workdir),
            )
        what = f"Synapse worker {worker.name}"

        def log_tail() -> str:
            return f"({worker.log_path})\n" + _tail(worker.log_path, 60)

        try:
            await wait_healthy(worker.proc, worker.url, what, log_tail, timeout)
        except RuntimeError:
            await self.stop_worker(name)
            raise

    async def stop_worker(self, name: str) -> None:
        """Stop one worker (SIGTERM, then SIGKILL after 10 s); the rest keep running."""
        worker = self.workers[name]
        proc, worker.proc = worker.proc, None
        await _terminate(proc)

    async def _start_proxy(self, timeout: float = 20) -> None:
        if self._proxy is not None and self._proxy.returncode is None:
            return
        backends = {
            "main": self.main_url,
            "client": self.workers[self.CLIENT].url,
            "appservice": self.workers[self.APPSERVICE].url,
        }
        with self.proxy_log_path.open("ab") as log:
            self._proxy = await asyncio.create_subprocess_exec(
                self.python,
                str(_PROXY_SCRIPT),
                "--port",
                str(self.port),
                "--log",
                str(self.proxy_log_path),
                *(f"{k}={v}" for k, v in backends.items()),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proxy.returncode is not None:
                code, self._proxy = self._proxy.returncode, None
                raise RuntimeError(
                    f"the worker proxy exited with code {code}; log tail:\n"
                    + _tail(self.proxy_log_path, 40)
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                await writer.wait_closed()
                return
            if time.monotonic() > deadline:
                await _terminate(self._proxy)
                self._proxy = None
                raise RuntimeError(f"the worker proxy is not listening after {timeout}s")
            await asyncio.sleep(0.05)

    async def stop_synapse(self) -> None:
        """Stop main and the workers but keep the proxy: clients get 502 Bad Gateway, as
        from a real deployment's reverse proxy while Synapse restarts."""
        procs = [w.proc for w in self.workers.values()]
        for w in self.workers.values():
            w.proc = None
        await asyncio.gather(*(_terminate(p) for p in procs), super().stop())

    async def stop(self) -> None:
        """End every process: workers, main, proxy. Safe to call when not running."""
        await self.stop_synapse()
        proxy, self._proxy = self._proxy, None
        await _terminate(proxy, grace=5)
