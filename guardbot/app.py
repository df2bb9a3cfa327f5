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
from mautrix.util.async_db import Scheme
from mautrix.util.program import Program

from guardbot import __version__, background, db, logs, metrics, registration
from guardbot.background import Wakeup
from guardbot.commands.management import Management
from guardbot.commands.reports import Reports
from guardbot.commands.room import RoomCommands
from guardbot.config import Config, ConfigError, load
from guardbot.core.backoff import backoff
from guardbot.core.clock import Clock
from guardbot.db import single_instance
from guardbot.db.lease import LeaseStore
from guardbot.guard.conversations import Conversations
from guardbot.guard.directory import Directory
from guardbot.guard.door import PREFIX as DOOR_PATHS
from guardbot.guard.door import Door
from guardbot.guard.evaluator import ConversationDecider, Evaluator
from guardbot.guard.executor import Executor
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.guard.intake import AppserviceAPI
from guardbot.leader import Leadership
from guardbot.logs import redact_url
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.matrix.errors import (
    Handler,
    body_limit,
    error_middleware,
    matrix_error,
    plain_server_header,
)
from guardbot.pwlu.service import PwluService

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
        """Every component built complete, in the order the flow runs: stores, the homeserver,
        the fact sources, the deciders, the evaluator and executor, the HTTP listener."""
        c = self.config
        clock = Clock()
        server = c.server_policy()
        bot, management_room = c.bot_user_id, c["management_room"]
        # Wake-ups first. The homeserver's "I answer again" is an observation (the inbox's
        # wake-up says so): its decision sweeps the listed rooms and makes due what waited.
        self.inbox_wakeup, self.queue_wakeup = Wakeup(), Wakeup()
        homeserver_back = self.inbox_wakeup.homeserver_back

        self.database = db.create(c["database"])
        self.decisions = db.DecisionStore(self.database)
        self.inbox = self.decisions.inbox
        self.lease = LeaseStore(self.database)
        self.leadership = Leadership(
            self.lease,
            clock,
            lease=float(c["leader.lease"]),
            alone=self.database.scheme == Scheme.SQLITE,
        )
        self.hs = Homeserver(
            c["homeserver.address"],
            c["appservice.as_token"],
            bot,
            on_back=homeserver_back,
            clock=clock,
            may_write=self.leadership.may_act,
        )
        self.guests = GuestOracle(
            self.hs,
            c["homeserver.domain"],
            set(c["bot.exempt_users"]),
            clock,
            admin_recheck=float(c["bot.admin_recheck"]),
        )
        self.directory = Directory(
            self.hs,
            self.decisions.rooms,
            clock,
            self.inbox_wakeup,
            poll_interval=c["directory.poll_interval"],
            page_size=c["directory.page_size"],
            recheck_every=float(c["directory.recheck_every"]),
        )
        self.rooms = RoomFactSource(server, self.directory, self.decisions.settings)
        # Rooms where guardbot talks with people (management room, PWLU DMs): every message
        # there reaches the evaluator, not only `!guardbot` commands.
        self.conversations = Conversations([management_room])
        self.pwlu: PwluService | None = None
        if c["pwlu.enabled"]:
            self.pwlu = PwluService(
                c,
                self.hs,
                self.database,
                self.conversations,
                clock,
                self.inbox_wakeup,
                is_admin=lambda: self.guests.admin,
            )
        self.management = Management(
            room_id=management_room,
            bot_user_id=bot,
            hs=self.hs,
            rooms=self.rooms,
            directory=self.directory,
            guests=self.guests,
            actions=self.decisions.actions,
            inbox=self.inbox,
            audit=self.decisions.audit,
            lease=self.lease,
            pwlu=self.pwlu.admin if self.pwlu else None,
            clock=clock,
        )
        room_commands = RoomCommands(
            bot_user_id=bot,
            management_room=management_room,
            server=server,
            rooms=self.rooms,
            hs=self.hs,
            audit=self.decisions.audit,
        )
        deciders: list[ConversationDecider] = [room_commands, self.management]
        self.evaluator = Evaluator(
            server=server,
            bot_user_id=bot,
            management_room=management_room,
            decisions=self.decisions,
            rooms=self.rooms,
            guests=self.guests,
            hs=self.hs,
            deciders=deciders,
            named_guests=self.pwlu.decider if self.pwlu else None,
            remember=[
                self.rooms.remember,
                self.conversations.remember,
                *([self.pwlu.remember] if self.pwlu else []),
            ],
            clock=clock,
            wakeup=self.inbox_wakeup,
            queue_wakeup=self.queue_wakeup,
        )
        self.reports = Reports(
            management_room, self.decisions.actions, self.inbox, self.inbox_wakeup, clock
        )
        self.executor = Executor(
            hs=self.hs,
            store=self.decisions.actions,
            guests=self.guests,
            rooms=self.rooms,
            clock=clock,
            wakeup=self.queue_wakeup,
            inbox_wakeup=self.inbox_wakeup,
            auto_join=bool(c["bot.auto_join_listed_rooms"]),
            carriers=self.pwlu.carriers if self.pwlu else None,
        )
        self.appservice = AppserviceAPI(
            c["appservice.hs_token"],
            c["homeserver.domain"],
            bot,
            self.inbox,
            self.inbox_wakeup,
            self.conversations,
            clock,
        )
        self.web = web.Application(
            middlewares=[
                error_middleware,
                self._standby_middleware,
                body_limit(PUBLIC_PATHS, PUBLIC_MAX_BODY),
            ],
            client_max_size=int(c["appservice.max_body_size"]),
        )
        self.web.on_response_prepare.append(plain_server_header)
        self.door = Door(
            token=c["antispam.token"],
            domain=c["homeserver.domain"],
            rooms=self.rooms,
            inbox=self.inbox,
            inbox_wakeup=self.inbox_wakeup,
            guests=self.guests,
            settings=self.decisions.settings,
            clock=clock,
            timeout=float(c["antispam.timeout"]),
            refusal=c["antispam.refusal"].replace(
                "{account_hint}", c["antispam.account_hint"] if c["pwlu.enabled"] else ""
            ),
        )
        self.appservice.register(self.web)
        self.door.register(self.web)
        self.web.router.add_get("/_matrix/mau/live", self._live)
        self.web.router.add_get("/_matrix/mau/ready", self._ready)
        if self.pwlu is not None:
            self.pwlu.register(self.web)
        self.clock = clock
        self.runner: web.AppRunner | None = None
        self._instance_lock: IO[str] | None = None
        self.tasks: list[asyncio.Task[Any]] = []
        self.serving = False  # the leader's traffic is taken (transactions, the PWLU API)
        self.ready = False  # and its loops run: /_matrix/mau/ready says 200

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
            asyncio.create_task(self._lead(), name="leader"),
        ]

    async def _load_view(self) -> None:
        """What the door and the evaluator read from the database: listed rooms, policies."""
        await self.directory.load()
        await self.rooms.load()

    async def _lead(self) -> None:
        """Wait for the lease (a standby keeps its view fresh meanwhile), take over, then keep
        the lease for as long as this process lives."""
        await self.leadership.elect(while_waiting=self._load_view)
        holding = asyncio.create_task(self.leadership.hold(), name="lease")
        self.tasks.append(holding)
        failures = 0
        while True:
            try:
                await self._take_over()
                break
            except Exception as e:
                self.serving = self.ready = False
                wait = backoff(failures, 1.0, 30.0)
                failures += 1
                log.warning("Could not take over yet (%s); trying again in %.0fs", e, wait)
                await asyncio.sleep(wait)
        await holding

    async def _take_over(self) -> None:
        c = self.config
        await self._load_view()  # as the last leader left it
        if self.pwlu is not None:
            await self.pwlu.load()  # its DMs are conversations before any transaction arrives
        self.serving = True  # before the ping: it, and the backlog it brings, must get in
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
        if self.pwlu is not None:
            timer = self.pwlu.timer
            self.tasks.append(background.start("reminders", timer.step, timer.wakeup))
        self.ready = True
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

    async def acting(self) -> bool:
        """Leading, and sure of it: a leader that cannot renew its lease passes the
        homeserver's traffic on (a proxy tries the next) until it knows again."""
        return self.serving and await self.leadership.confirm()

    async def _ready(self, _: web.Request) -> web.Response:
        # 200 only on the leader: a load balancer sends the homeserver's traffic there.
        return web.json_response({}, status=200 if self.ready and await self.acting() else 503)

    @web.middleware
    async def _standby_middleware(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        """A standby answers what only reads (liveness, readiness, the door); everything else
        is the leader's, and a 503 makes the homeserver retry, or a proxy try the next."""
        if request.path.startswith((DOOR_PATHS, "/_matrix/mau/")) or await self.acting():
            return await handler(request)
        return matrix_error(
            503,
            "M_UNKNOWN",
            "This guardbot is a standby (or starting, or unsure of its lease): the leader"
            " answers this; its /_matrix/mau/ready says 200",
        )

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
        self.serving = self.ready = False
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
