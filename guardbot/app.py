"""Wiring and lifecycle: config → database → homeserver → HTTP listener → background loops.

Built on mautrix's Program for argument parsing, logging set-up and signal handling. A mistake
the operator can fix (config, unreachable database or homeserver) ends in one line and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import logging
import logging.config
import signal
import sys
from typing import IO, Any

from aiohttp import web
from mautrix.util.program import Program

from guardbot import __version__, background, logs, metrics, registration
from guardbot.config import Config, ConfigError, load
from guardbot.db import single_instance
from guardbot.guard.door import PREFIX as DOOR_PATHS
from guardbot.logs import redact_url
from guardbot.matrix.client import HomeserverError
from guardbot.matrix.errors import (
    body_limit,
    error_middleware,
    plain_server_header,
)
from guardbot.wiring import wire

log = logging.getLogger("guardbot")

# Routes strangers reach (the named-guest API, the claim page) and the door: small bodies only.
PUBLIC_PATHS = ("/_guardbot/",)
PUBLIC_MAX_BODY = 64 * 1024


class StartupError(Exception):
    """Something the operator must fix before guardbot can run; str() is the one line."""


def fail(message: str, code: int = 2) -> None:
    print(f"guardbot: {message}", file=sys.stderr)
    raise SystemExit(code)


class Guardbot(Program):
    module = "guardbot"
    name = "guardbot"
    command = "guardbot"
    description = "Keeps Matrix guests out of rooms listed in the public room directory"
    version = __version__
    config: Config

    def start_prometheus(self) -> None:
        # mautrix's version reads metrics.listen_port; guardbot's key is metrics.listen_address.
        if self.config["metrics.enabled"]:
            try:
                metrics.serve(self.config["metrics.listen_address"])
            except OSError as e:
                fail(f"metrics.listen_address: cannot listen there ({e.strerror})")

    def prepare_arg_parser(self) -> None:
        super().prepare_arg_parser()
        self.parser.formatter_class = argparse.RawDescriptionHelpFormatter
        self.parser.epilog = (
            "other commands (each has its own --help):\n"
            "  guardbot doctor -c config.yaml -r registration.yaml [--fix]   check a set-up\n"
            "  guardbot audit -c config.yaml [--room R] [--user U]          print the audit log"
        )
        self.parser.add_argument(
            "-g",
            "--generate-registration",
            action="store_true",
            help="write the appservice registration and exit; tokens already in the config"
            " are kept",
        )
        self.parser.add_argument(
            "--new-tokens",
            action="store_true",
            help="with -g: replace the appservice and door tokens (then update homeserver.yaml"
            " and restart the homeserver and guardbot)",
        )
        self.parser.add_argument(
            "-r",
            "--registration",
            default="registration.yaml",
            metavar="<path>",
            help="where -g writes the registration (default: registration.yaml)",
        )

    # -- before the event loop -------------------------------------------------------------
    def prepare_config(self) -> None:
        path = self.args.config
        if self.args.new_tokens and not self.args.generate_registration:
            fail("--new-tokens: only together with -g (it writes the registration)")
        try:
            if self.args.generate_registration:
                registration.generate(path, self.args.registration, renew=self.args.new_tokens)
                raise SystemExit(0)
            self.config = load(path)
        except ConfigError as e:
            fail(str(e))

    def prepare_log(self) -> None:
        try:
            logging.config.dictConfig(copy.deepcopy(dict(self.config["logging"])))
        except (ValueError, TypeError, AttributeError, ImportError) as e:
            fail(f"logging: invalid logging config ({e})")
        # On every handler, whatever the config's logging section says: tokens never get out.
        logs.install_redaction(logs.secrets_of(self.config))
        self.log = logging.getLogger(__name__)  # type: ignore[assignment]

    # -- inside the event loop -------------------------------------------------------------
    def prepare(self) -> None:
        """Every component built (guardbot/wiring.py), then the HTTP listener's routes."""
        c = self.config
        parts = self.parts = wire(c)
        # What the lifecycle below uses, by name.
        self.clock, self.hs, self.database = parts.clock, parts.hs, parts.stores.database
        self.leadership, self.lease = parts.stores.leadership, parts.stores.lease
        self.decisions, self.inbox = parts.decisions, parts.inbox
        self.inbox_wakeup, self.queue_wakeup = parts.inbox_wakeup, parts.queue_wakeup
        self.guests, self.directory = parts.facts.guests, parts.facts.directory
        self.rooms, self.named_guests = parts.facts.rooms, parts.named_guests
        self.evaluator, self.executor, self.reports = (
            parts.evaluator,
            parts.executor,
            parts.reports,
        )
        self.web = web.Application(
            middlewares=[
                error_middleware,
                self.leadership.gate(reads=(DOOR_PATHS, "/_matrix/mau/")),
                body_limit(PUBLIC_PATHS, PUBLIC_MAX_BODY),
            ],
            client_max_size=int(c["appservice.max_body_size"]),
        )
        self.web.on_response_prepare.append(plain_server_header)
        parts.appservice.add_routes(self.web)
        parts.door.add_routes(self.web)
        self.web.router.add_get("/_matrix/mau/live", self._live)
        self.web.router.add_get("/_matrix/mau/ready", self.leadership.ready_answer)
        if self.named_guests is not None:
            self.named_guests.add_routes(self.web)
        self.runner: web.AppRunner | None = None
        self._instance_lock: IO[str] | None = None
        self.tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        try:
            await self._start()
        except StartupError as e:
            await self._close()
            fail(str(e))
        await super().start()
        # mautrix's Program turns SIGTERM into a KeyboardInterrupt wherever the loop happens to
        # be; inside a request handler that cut stop() short, and the SQLite thread then kept
        # the process alive for ever. Ask for a clean stop instead.
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.add_signal_handler(sig, self._request_stop)

    def _request_stop(self) -> None:
        if not self._stop_task.done():
            self.manual_stop()

    async def _start(self) -> None:
        c = self.config
        try:
            self._instance_lock = single_instance.lock(self.database)
        except single_instance.InUse as e:
            raise StartupError(f"database: {e}") from e
        try:
            async with single_instance.upgrades_in_turn(self.database):
                await self.database.start()
        except Exception as e:
            first = (str(e) or type(e).__name__).splitlines()[0]
            raise StartupError(f"database: cannot open {redact_url(c['database'])}: {first}") from e
        await self._check_homeserver()
        await self._load_view()
        # Requests in flight get a few seconds at shutdown, well inside docker stop's 10.
        self.runner = web.AppRunner(self.web, access_log=None, shutdown_timeout=5.0)
        await self.runner.setup()
        host, port = c["appservice.hostname"], c["appservice.port"]
        try:
            await web.TCPSite(self.runner, host, port).start()
        except OSError as e:
            why = f"appservice.port: cannot listen on {host}:{port} ({e.strerror})"
            raise StartupError(why) from e
        await self._check_admin()
        # Standby or leader, the door answers and admin rights are watched (both only read).
        self.tasks = [
            background.start("admin-rights", self.guests.check_admin, expected=(HomeserverError,)),
            asyncio.create_task(
                self.leadership.run(self._take_over, while_waiting=self._load_view),
                name="leader",
            ),
        ]

    async def _load_view(self) -> None:
        """What the door and the evaluator read from the database: listed rooms, policies."""
        await self.directory.load()
        await self.rooms.load()

    async def _take_over(self) -> None:
        c = self.config
        await self._load_view()  # as the last leader left it
        if self.named_guests is not None:
            # Its DMs are conversations before any transaction arrives.
            await self.named_guests.load()
        self.leadership.opened()  # before the ping: it, and the backlog it brings, must get in
        # The homeserver may be backing off from the process that died: the ping makes it
        # send what it holds now (Synapse retries at once for a pinged appservice).
        await self._ping()
        self.tasks += [
            background.start("reports", self.reports.step),
            background.start(
                "evaluator", self.evaluator.step, self.inbox_wakeup, expected=(HomeserverError,)
            ),
            background.start("executor", self.executor.step, self.queue_wakeup, max_backoff=5),
            background.start(
                "directory",
                self.directory.poll_step,
                expected=(HomeserverError,),
                max_backoff=float(c["directory.poll_interval"]),
            ),
            background.start(
                "publications",
                self.directory.publication_step,
                self.directory.publication_wakeup,
                expected=(HomeserverError,),
            ),
            background.start("prune", self._prune_transactions),
        ]
        if self.named_guests is not None:
            timer = self.named_guests.timer
            self.tasks.append(background.start("reminders", timer.step, timer.wakeup))
            self.tasks.append(background.start("named-guest-counts", self.named_guests.count))
        if self.parts.expiry is not None:
            idle = self.parts.expiry.idle
            self.tasks.append(background.start("expiry", idle.step, expected=(HomeserverError,)))
        log.info("guardbot %s is running as %s", __version__, c.bot_user_id)

    async def _check_homeserver(self) -> None:
        address = self.config["homeserver.address"]
        try:
            await self.hs.versions()
        except HomeserverError as e:
            raise StartupError(f"homeserver.address: cannot reach {address} ({e.error})") from e
        try:
            created = await self.hs.register_bot()
        except HomeserverError as e:
            if e.errcode in ("M_UNKNOWN_TOKEN", "M_MISSING_TOKEN") or e.status == 401:
                raise StartupError(
                    "appservice.as_token: the homeserver does not know it; add the registration"
                    " file to app_service_config_files in homeserver.yaml and restart it"
                ) from e
            if e.errcode == "M_EXCLUSIVE" or e.errcode == "M_INVALID_USERNAME":
                raise StartupError(
                    "appservice.bot_username: the homeserver refused it as guardbot's user"
                    f" ({e.errcode}); regenerate the registration with -g"
                ) from e
            raise StartupError(f"homeserver.address: registering guardbot failed ({e})") from e
        if created:
            log.info("Registered %s", self.config.bot_user_id)

    async def _ping(self) -> None:
        try:
            await self.hs.ping(self.config["appservice.id"])
        except HomeserverError as e:
            if e.errcode == "M_UNRECOGNIZED" or e.status == 404:
                log.warning("The homeserver does not support appservice ping; skipping it")
                return
            log.error(
                "The homeserver could not reach guardbot at %s (%s). Check appservice.address"
                " and that the homeserver can connect to it; events will not arrive until then.",
                self.config["appservice.address"],
                e,
            )
            return
        log.info("Appservice ping through the homeserver works")

    async def _check_admin(self) -> None:
        try:
            self.guests.set_admin(await self.hs.is_server_admin())
        except HomeserverError as e:
            log.warning("Could not check whether guardbot is a server admin: %s", e)
        if self.guests.admin:
            return  # set_admin said so
        bot = self.config.bot_user_id
        address = self.config["homeserver.address"].rstrip("/")
        log.warning(
            "guardbot (%s) is NOT a server admin. To make it one, as an existing admin run:\n"
            "  curl -X PUT -H 'Authorization: Bearer <admin access token>' -d '{\"admin\": true}'"
            " %s/_synapse/admin/v2/users/%s\n"
            "(%s is the homeserver as guardbot reaches it; from elsewhere, e.g. outside its"
            " container, use its address as you reach it). guardbot notices within"
            " bot.admin_recheck seconds. Until then it cannot ask the homeserver who is a guest:"
            " it acts only on new joins whose member event says kind: guest, cannot check"
            " invited users or sweep rooms that become listed, and cannot auto-join rooms.",
            bot,
            address,
            bot,
            address,
        )

    async def _prune_transactions(self) -> float:
        week_ms = 7 * 24 * 3600 * 1000
        await self.inbox.prune_transactions(self.clock.now_ms() - week_ms)
        return 3600.0

    async def _live(self, _: web.Request) -> web.Response:
        return web.json_response({})

    def prepare_stop(self) -> None:
        # A second Ctrl-C or SIGTERM must not cut the clean shutdown off half-way.
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)

    async def stop(self) -> None:
        await self._close()
        await super().stop()

    async def system_exit(self) -> None:
        await self._close()

    async def _close(self) -> None:
        self.leadership.stopping()
        # The listener first, letting requests in flight finish: a background task cancelled
        # inside a database transaction leaves mautrix's SQLite connection mid-transaction,
        # and every request still using it would then fail with a 500.
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        await self.leadership.release()
        await self.hs.close()
        try:
            await self.database.stop()
        except Exception:
            pass
        if self._instance_lock is not None:
            self._instance_lock.close()
            self._instance_lock = None
