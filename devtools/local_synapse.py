"""A throwaway real Synapse on loopback, for integration tests and the local demo.

Config choices follow /work/shared/notes/synapse-facts.md (measured on Synapse 1.163.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiohttp
from signedjson.key import generate_signing_key, write_signing_keys

from guardbot.config import Config, create_from_example

# Tests hammer the server; Synapse's default limits would make them flaky.
_LOOSE = {"per_second": 1000, "burst_count": 10000}
_LOG_TAIL_LINES = 40


def _free_port() -> int:
    # Racy in theory (the port is released before Synapse binds it) but fine on loopback.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def deep_merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Return base with over merged in; nested dicts merge, everything else is replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


async def wait_healthy(
    proc: asyncio.subprocess.Process,
    url: str,
    what: str,
    log_tail: Callable[[], str],
    timeout: float,
) -> None:
    """Until GET <url>/health answers 200; RuntimeError with the log's tail if the process
    exits first or `timeout` passes (the caller cleans up)."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if proc.returncode is not None:
                raise RuntimeError(
                    f"{what} exited with code {proc.returncode} during start-up; log tail:\n"
                    + log_tail()
                )
            with contextlib.suppress(TimeoutError, aiohttp.ClientError):  # not listening yet
                async with session.get(
                    url + "/health", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} not healthy after {timeout}s; log tail:\n" + log_tail())
            await asyncio.sleep(0.1)


class LocalSynapse:
    """Run, stop and talk to a disposable Synapse whose state lives in `workdir`."""

    def __init__(
        self,
        workdir: pathlib.Path,
        *,
        server_name: str = "localhost",
        appservice_files: Sequence[pathlib.Path] = (),
        extra_config: dict[str, Any] | None = None,
        port: int | None = None,
        python: str = sys.executable,
    ) -> None:
        self.workdir = pathlib.Path(workdir).resolve()
        self.server_name = server_name
        self.appservice_files = [pathlib.Path(p).resolve() for p in appservice_files]
        self.extra_config = dict(extra_config or {})
        self.port = port if port is not None else _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.python = python
        # Whether the listener believes X-Forwarded-For, as one behind a reverse proxy does.
        self.x_forwarded = False
        # A second listener for guardbot alone, on loopback, that believes X-Forwarded-For
        # (docs/named-guests.md, "Each person's own limits"); guardbot's config points at it.
        self.guardbot_listener: int | None = None
        # Federation on loopback (enable_federation): the TLS listener's port, part of the name.
        self.federation_port: int | None = None
        # Synapse's own Prometheus metrics on this port (enable_metrics), when set.
        self.metrics_port: int | None = None
        self.config_path = self.workdir / "homeserver.yaml"
        self.log_path = self.workdir / "synapse.log"
        self.registration_shared_secret = ""
        self._proc: asyncio.subprocess.Process | None = None

    # ---- configuration -------------------------------------------------------------

    def _load_secret(self) -> str:
        # Keep the secret of an existing workdir stable, so re-created instances can still register.
        if self.config_path.exists():
            try:
                old = json.loads(self.config_path.read_text())
                secret = old.get("registration_shared_secret")
                if isinstance(secret, str) and secret:
                    return secret
            except ValueError:
                pass
        return secrets.token_hex(32)

    def _default_config(self) -> dict[str, Any]:
        w = self.workdir
        return {
            "server_name": self.server_name,
            "public_baseurl": self.base_url + "/",
            "pid_file": str(w / "homeserver.pid"),
            # One listener; the admin API is served on the client resource too.
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "tls": False,
                    "x_forwarded": self.x_forwarded,
                    "resources": [{"names": ["client"], "compress": False}],
                }
            ],
            "database": {"name": "sqlite3", "args": {"database": str(w / "homeserver.db")}},
            **self._guardbot_listener(),
            "log_config": str(w / "log_config.yaml"),
            "media_store_path": str(w / "media_store"),
            "signing_key_path": str(w / "signing.key"),
            "report_stats": False,
            "registration_shared_secret": self.registration_shared_secret,
            "allow_guest_access": True,
            # Opening registration also needs enable_registration_without_verification.
            "enable_registration": False,
            # No outbound network: no key servers, no federation.
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "federation_domain_whitelist": [],
            "presence": {"enabled": False},
            # Default is deny-all, which blocks even admins from publishing rooms.
            "room_list_publication_rules": [{"action": "allow"}],
            "rc_message": _LOOSE,
            "rc_registration": _LOOSE,
            "rc_room_creation": _LOOSE,
            "rc_joins_per_room": _LOOSE,
            "rc_login": {"address": _LOOSE, "account": _LOOSE, "failed_attempts": _LOOSE},
            "rc_joins": {"local": _LOOSE, "remote": _LOOSE},
            "rc_invites": {"per_room": _LOOSE, "per_user": _LOOSE, "per_issuer": _LOOSE},
            "app_service_config_files": [str(p) for p in self.appservice_files],
            **self._federation(),
            **self._metrics(),
        }

    def enable_federation(self) -> None:
        """Federate with other Synapses on loopback: server_name 127.0.0.1:<port>, a TLS
        listener there with a self-signed certificate, certificates not verified, loopback
        allowed. Call before the first start (the name is part of every user ID)."""
        self.federation_port = _free_port()
        self.server_name = f"127.0.0.1:{self.federation_port}"

    def _federation(self) -> dict[str, Any]:
        if self.federation_port is None:
            return {}
        cert, key = self.workdir / "tls.crt", self.workdir / "tls.key"
        if not cert.exists():
            subprocess.run(
                [
                    "openssl",
                    "req",
                    "-x509",
                    "-newkey",
                    "rsa:2048",
                    "-nodes",
                    "-days",
                    "2",
                    "-subj",
                    "/CN=127.0.0.1",
                    "-addext",
                    "subjectAltName=IP:127.0.0.1",
                    "-keyout",
                    str(key),
                    "-out",
                    str(cert),
                ],
                check=True,
                capture_output=True,
            )
        client = self._default_listeners()
        federation = {
            "port": self.federation_port,
            "bind_addresses": ["127.0.0.1"],
            "type": "http",
            "tls": True,
            "resources": [{"names": ["federation"], "compress": False}],
        }
        return {
            "listeners": [*client, federation],
            "tls_certificate_path": str(cert),
            "tls_private_key_path": str(key),
            "federation_verify_certificates": False,
            "federation_domain_whitelist": None,
            "ip_range_blacklist": [],
            "ip_range_whitelist": ["127.0.0.1"],
            "federation_ip_range_blacklist": [],
        }

    def _metrics(self) -> dict[str, Any]:
        """With metrics_port: Synapse's Prometheus metrics served there, beside the others."""
        if self.metrics_port is None:
            return {}
        others = self._default_listeners()
        if self.federation_port is not None:
            others = self._federation()["listeners"]
        metrics = {"port": self.metrics_port, "bind_addresses": ["127.0.0.1"], "type": "metrics"}
        return {"enable_metrics": True, "listeners": [*others, metrics]}

    def _default_listeners(self) -> list[dict[str, Any]]:
        if self.guardbot_listener is not None:
            return self._guardbot_listener()["listeners"]
        return [
            {
                "port": self.port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": self.x_forwarded,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ]

    def _guardbot_listener(self) -> dict[str, Any]:
        if self.guardbot_listener is None:
            return {}
        return {
            "listeners": [
                {
                    "port": self.port,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "x_forwarded": self.x_forwarded,
                    "resources": [{"names": ["client"], "compress": False}],
                },
                {
                    "port": self.guardbot_listener,
                    "bind_addresses": ["127.0.0.1"],
                    "type": "http",
                    "x_forwarded": True,
                    "resources": [{"names": ["client"], "compress": False}],
                },
            ]
        }

    def _log_config(self) -> dict[str, Any]:
        # Same file as the process's stdout/stderr, so one tail shows everything.
        return {
            "version": 1,
            "formatters": {
                "precise": {
                    "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s"
                    " - %(request)s - %(message)s"
                }
            },
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "formatter": "precise",
                    "filename": str(self.log_path),
                    "mode": "a",
                    "encoding": "utf8",
                }
            },
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }

    def write_config(self) -> pathlib.Path:
        """Write homeserver.yaml, log config and (once) a signing key; return the config path."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        (self.workdir / "media_store").mkdir(exist_ok=True)
        if not self.registration_shared_secret:
            self.registration_shared_secret = self._load_secret()
        key_path = self.workdir / "signing.key"
        if not key_path.exists():
            # Much faster than `--generate-keys`, which imports all of Synapse.
            with key_path.open("w") as f:
                write_signing_keys(f, [generate_signing_key("a_" + secrets.token_hex(2))])
        # YAML is a superset of JSON, so json.dump gives a valid homeserver.yaml.
        (self.workdir / "log_config.yaml").write_text(json.dumps(self._log_config(), indent=2))
        config = deep_merge(self._default_config(), self.extra_config)
        self.config_path.write_text(json.dumps(config, indent=2))
        return self.config_path

    # ---- process lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log file)"
        return "\n".join(text.splitlines()[-lines:])

    async def start(self, timeout: float = 60) -> None:
        """Start Synapse and wait until GET /health answers 200."""
        if self.running:
            return
        config = self.write_config()
        with self.log_path.open("ab") as log:
            # The child keeps its own copy of the fd; ours can close right away.
            self._proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "synapse.app.homeserver",
                "-c",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=str(self.workdir),
            )
        try:
            await wait_healthy(self._proc, self.base_url, "Synapse", self.log_tail, timeout)
        except RuntimeError:
            await self.stop()
            raise

    async def stop(self) -> None:
        """SIGTERM, wait up to 10 s, then SIGKILL. Safe to call when not running."""
        proc, self._proc = self._proc, None
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ---- HTTP helpers ----------------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, token: str | None = None, body: Any = None
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        url = self.base_url + path
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, url, json=body, headers=headers) as resp,
        ):
            data = await resp.json(content_type=None)
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path} -> {resp.status}: {data}")
            return data

    async def register_user(
        self, localpart: str, password: str, *, admin: bool = False
    ) -> tuple[str, str]:
        """Register via the shared-secret admin API (works with registration closed)."""
        path = "/_synapse/admin/v1/register"
        nonce = (await self._request("GET", path))["nonce"]
        mac = hmac.new(self.registration_shared_secret.encode(), digestmod=hashlib.sha1)
        role = b"admin" if admin else b"notadmin"
        mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(), role]))
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac.hexdigest(),
        }
        data = await self._request("POST", path, body=body)
        return data["user_id"], data["access_token"]

    async def register_guest(self) -> tuple[str, str]:
        data = await self._request("POST", "/_matrix/client/v3/register?kind=guest", body={})
        return data["user_id"], data["access_token"]

    async def make_admin(self, admin_token: str, user_id: str, admin: bool = True) -> None:
        path = f"/_synapse/admin/v2/users/{quote(user_id, safe='')}"
        await self._request("PUT", path, token=admin_token, body={"admin": admin})

    async def register_appservice_user(self, as_token: str, localpart: str) -> str:
        """Register an appservice's own user, as the appservice does at start."""
        body = {"type": "m.login.application_service", "username": localpart}
        data = await self._request("POST", "/_matrix/client/v3/register", token=as_token, body=body)
        return str(data["user_id"])

    def guardbot_config(self, path: pathlib.Path, port: int) -> Config:
        """guardbot's config file pointed at this homeserver, listening on `port` (made from the
        example config if missing). Tokens are left as they are: `guardbot -g` makes them."""
        if not path.exists():
            create_from_example(str(path))
        config = Config(str(path))
        config.load()
        config["homeserver.address"] = (
            self.base_url
            if self.guardbot_listener is None
            else f"http://127.0.0.1:{self.guardbot_listener}"
        )
        config["homeserver.domain"] = self.server_name
        config["appservice.address"] = f"http://127.0.0.1:{port}"
        config["appservice.port"] = port
        config.save()
        return config

    def register_guardbot(self, config_path: pathlib.Path, port: int) -> Config:
        """guardbot_config, then `guardbot -g` as an operator runs it: fresh tokens in the
        config and a registration at appservice_files[0] (for Synapse to load at its start)."""
        self.guardbot_config(config_path, port)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "guardbot",
                "-c",
                str(config_path),
                "-g",
                "-r",
                str(self.appservice_files[0]),
            ],
            check=True,
            capture_output=True,
            cwd=config_path.parent,
        )
        config = Config(str(config_path))
        config.load()
        return config
