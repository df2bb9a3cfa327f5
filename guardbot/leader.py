"""Who acts: the leader of an active/standby set of guardbot processes on one PostgreSQL
database.

Every process campaigns for one lease row (db/lease_store.py), timed by the database's clock. The
leader renews it every fifth of the lease and acts; the others answer only what reads (the
door, liveness), keep their view of the rooms fresh from the database and try again every
fifth of the lease. A leader counts its lease from when it *sent* its last renewal, and a
fifth of the lease before that could have run out it stops acting (`may_act`, asked before
every write to the homeserver): so it has stopped before any standby can take over, whatever
the network or the database do in between. It is then in doubt, not lost: when its renewal
goes through again (the database was only away, and nobody took over), it goes on. When the
renewal finds another term, it exits at once (code 3) — a leader that lost its lease knows
nothing it can trust, and every action is already safe to redo after a crash; a supervisor
(Docker's restart policy, systemd) brings the process back as a standby.

SQLite serves one process (the file lock of db/single_instance.py), which takes the lease at
once; the same code runs, so a single instance is led the same way.

What the process is doing is one typed `Stage`, owned here with what follows from it: which
requests the HTTP gate lets through, what /_matrix/mau/ready answers, and whether the
homeserver client may write. The app starts `run` and builds nothing of this itself.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from enum import StrEnum

from aiohttp import web

from guardbot import metrics
from guardbot.core.backoff import backoff
from guardbot.core.clock import Clock
from guardbot.db.lease_store import LeaseHolder, LeaseStore
from guardbot.matrix.errors import Handler, matrix_error

log = logging.getLogger(__name__)

EXIT_LOST = 3


class Stage(StrEnum):
    STARTING = "starting"  # start-up checks (guardbot registers its own user)
    STANDBY = "standby"  # waiting for the lease; answers only what reads
    TAKING_OVER = "taking over"  # the lease is ours: loading what the last leader left
    OPEN = "open"  # the leader's traffic is let in (the backlog the ping brings); loops start
    READY = "ready"  # every loop runs: /_matrix/mau/ready says 200
    STOPPING = "stopping"


LEADING = (Stage.TAKING_OVER, Stage.OPEN, Stage.READY)


def _exit(why: str) -> None:
    log.critical(
        "No longer the leader (%s): exiting at once so that nothing more is done here; run"
        " guardbot under a supervisor that restarts it (it comes back as a standby)",
        why,
    )
    logging.shutdown()
    os._exit(EXIT_LOST)


def this_process() -> str:
    """How a lease holder is named in logs and `status`."""
    return f"{socket.gethostname()} pid {os.getpid()}"


class Leadership:
    def __init__(
        self,
        store: LeaseStore,
        clock: Clock,
        *,
        lease: float,
        alone: bool,
        holder: str | None = None,
        on_lost: Callable[[str], None] = _exit,
    ) -> None:
        self.store = store
        self.clock = clock
        self.lease_ms = int(lease * 1000)
        self.interval = lease / 5
        self.alone = alone  # SQLite: nobody else can hold the lease
        self.holder = holder or this_process()
        self.on_lost = on_lost
        self.stage = Stage.STARTING
        self.term: int | None = None
        self._deadline = 0.0  # monotonic; past it, this process must not act
        self._waiting_logged = False
        self._doubt_logged = False
        self._renewing = asyncio.Lock()  # one renewal at a time: the loop's or a confirm()

    @property
    def leading(self) -> bool:
        return self.term is not None and self.clock.monotonic() < self._deadline

    def may_act(self) -> bool:
        """Asked before every write to the homeserver. True while starting (guardbot makes
        sure of its own user before it campaigns) and while leading, unless the lease may
        have run out (frozen, cut off from the database): then it waits until its renewal
        says whether it still leads. Never on a standby."""
        if self.stage is Stage.STARTING:
            return True
        return self.stage in LEADING and self.clock.monotonic() < self._deadline

    def _lose(self, why: str) -> None:
        self.term = None
        self.stage = Stage.STANDBY
        metrics.LEADER.set(0)
        self.on_lost(why)

    def _hold_until(self, sent_at: float) -> None:
        self._deadline = sent_at + (self.lease_ms / 1000) * 0.8

    # -- the process's life as a member of the set ---------------------------------------------
    async def run(
        self,
        take_over: Callable[[], Awaitable[None]],
        while_waiting: Callable[[], Awaitable[None]],
    ) -> None:
        """Wait for the lease (a standby keeps its view fresh meanwhile), take over (tried
        again, backing off, until it works), then keep the lease for as long as this process
        lives. `take_over` calls `opened()` once the leader's traffic may come in."""
        await self.elect(while_waiting)
        holding = asyncio.create_task(self.hold(), name="lease")
        failures = 0
        try:
            while True:
                try:
                    await take_over()
                    break
                except Exception as e:
                    self.stage = Stage.TAKING_OVER
                    wait = backoff(failures, 1.0, 30.0)
                    failures += 1
                    log.warning("Could not take over yet (%s); trying again in %.0fs", e, wait)
                    await asyncio.sleep(wait)
            self.stage = Stage.READY
            await holding
        finally:
            holding.cancel()

    def opened(self) -> None:
        """The take-over is far enough for the leader's traffic to come in."""
        if self.stage is Stage.TAKING_OVER:
            self.stage = Stage.OPEN

    def stopping(self) -> None:
        self.stage = Stage.STOPPING

    async def acting(self) -> bool:
        """Taking the leader's traffic, and sure of the lease: a leader that cannot renew
        it passes the homeserver's traffic on (a proxy tries the next) until it knows."""
        return self.stage in (Stage.OPEN, Stage.READY) and await self.confirm()

    async def ready(self) -> bool:
        return self.stage is Stage.READY and await self.confirm()

    def gate(self, reads: tuple[str, ...]) -> Callable[..., Awaitable[web.StreamResponse]]:
        """The HTTP gate: paths starting with `reads` (liveness, readiness, the door) are
        answered by any process; everything else is the leader's, and a 503 makes the
        homeserver retry, or a proxy try the next."""

        @web.middleware
        async def gate(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith(reads) or await self.acting():
                return await handler(request)
            return matrix_error(
                503,
                "M_UNKNOWN",
                f"This guardbot is not leading ({self.stage}, or unsure of its lease): the"
                " leader answers this; its /_matrix/mau/ready says 200",
            )

        return gate

    async def ready_answer(self, _: web.Request) -> web.Response:
        """/_matrix/mau/ready: 200 only on the leader, once every loop runs (a load balancer
        sends the homeserver's traffic there)."""
        return web.json_response({}, status=200 if await self.ready() else 503)

    # -- the campaign ------------------------------------------------------------------------
    async def elect(self, while_waiting: Callable[[], Awaitable[None]]) -> None:
        """Return once this process leads; until then run `while_waiting` every try."""
        self.stage = Stage.STANDBY
        while True:
            sent_at = self.clock.monotonic()
            try:
                term = await self.store.acquire(self.holder, self.lease_ms, force=self.alone)
                metrics.DATABASE_UP.set(1)
            except Exception as e:
                metrics.DATABASE_UP.set(0)
                log.warning("Cannot ask the database for the lease (%s); trying again", e)
                term = None
            if term is not None:
                self.term = term
                self.stage = Stage.TAKING_OVER
                self._hold_until(sent_at)
                metrics.LEADER.set(1)
                log.info("This process leads (term %d): acting", term)
                return
            if not self._waiting_logged:
                self._waiting_logged = True
                log.info("Standby: %s; waiting to take over", await self._describe_holder())
            try:
                await while_waiting()
            except Exception:
                log.exception("Standby: could not refresh what it knows")
            await asyncio.sleep(self.interval)

    async def _describe_holder(self) -> str:
        try:
            current: LeaseHolder | None = await self.store.current()
        except Exception:
            return "another process holds the lease"
        if current is None:
            return "nobody holds the lease"
        return f"{current.holder} leads (term {current.term})"

    async def hold(self) -> None:
        """Renew for as long as this process leads; lose the lead when that fails."""
        while self.term is not None:
            await asyncio.sleep(self.interval)
            async with self._renewing:
                await self._renew()

    async def confirm(self) -> bool:
        """Leading, and sure of it? A leader unsure only because it could not run for a while
        (a long stall of this process) renews at once rather than turn work away."""
        if self.term is not None and not self.leading:
            async with self._renewing:
                if self.term is not None and not self.leading:
                    await self._renew()
        return self.leading

    async def _renew(self) -> None:
        """One renewal: the lease extended, lost (another term), or left unsure (no answer)."""
        term, sent_at = self.term, self.clock.monotonic()
        if term is None:
            return
        try:
            renewed = await asyncio.wait_for(
                self.store.renew(term, self.lease_ms), timeout=self.lease_ms / 1000
            )
        except Exception as e:  # the database away or slow: in doubt once past the deadline
            metrics.DATABASE_UP.set(0)
            in_doubt = not self.leading
            if in_doubt and not self._doubt_logged:
                why = str(e) or type(e).__name__
                log.error("Not acting until the lease is renewed: %s", why)
            self._doubt_logged = in_doubt
            return
        metrics.DATABASE_UP.set(1)
        if not renewed:
            self._lose(f"another process took over from term {term}")
            return
        if self._doubt_logged:
            log.warning("The lease is renewed (term %d): acting again", term)
            self._doubt_logged = False
        self._hold_until(sent_at)

    async def release(self) -> None:
        """At a clean stop: a standby takes over at its next try, not after the lease."""
        self.stage = Stage.STOPPING
        term, self.term = self.term, None
        metrics.LEADER.set(0)
        if term is not None:
            try:
                await self.store.release(term)
            except Exception as e:
                log.warning("Could not hand the lease back (%s); it runs out by itself", e)
