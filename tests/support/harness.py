"""Pieces the fault suite shares: its size, the databases a storm runs on, the homeserver's own
record of what guardbot did, secrets to look for in logs, and small bounded helpers.

Everything is counted from the homeserver's side (Synapse's admin API reads any room's timeline
whoever is in it), never from guardbot's database: a repeated or wrong action must be visible
where it did its harm.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from guardbot.config import Config
from guardbot.named_guests.passwords import KeyRing

from .homeserver import GuardbotProcess, Homeserver
from .matrix_client import MatrixError, User, q
from .postgres import POSTGRES

T = TypeVar("T")

OPEN_REGISTRATION = {"enable_registration": True, "enable_registration_without_verification": True}

# What the fault suite's fixtures hand a test: launch(hs, database, **overrides) runs guardbot;
# make_database("postgres" | "sqlite") makes a database for this test only.
Launch = Callable[..., Awaitable[GuardbotProcess]]
MakeDatabase = Callable[[str], Awaitable[str]]


# -- size -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scale:
    name: str
    crash_trials: int  # SIGKILL + restart cycles per database backend
    guests_per_trial: int
    crash_backends_all: bool  # full: both SQLite and PostgreSQL; ci: PostgreSQL when there
    outage_s: float  # how long the homeserver is down mid-storm
    outage_guests: int
    pg_guests: int
    pg_restarts: int  # PostgreSQL restarts during that storm
    fuzz_examples: int  # per in-process property
    live_fuzz_examples: int  # against the real running guardbot
    converge_s: float  # how long the end state may take to settle


SCALES = {
    # ci: an outage of 30 s is the shortest after which backoffs alone would leave guests in
    # listed rooms for long after the homeserver is back (the drain test's point).
    "ci": Scale("ci", 3, 24, False, 30, 30, 24, 2, 150, 60, 120),
    "full": Scale("full", 10, 40, True, 60, 150, 80, 4, 1500, 400, 300),
}
SCALE_NAME = os.environ.get("GUARDBOT_FAULT_SCALE", "ci")
if SCALE_NAME not in SCALES:
    raise RuntimeError(f"GUARDBOT_FAULT_SCALE must be one of {', '.join(SCALES)}")
SCALE = SCALES[SCALE_NAME]


def backends() -> list[str]:
    """Databases a storm runs on: PostgreSQL when the CI has it; the full run adds SQLite."""
    if SCALE.crash_backends_all or not POSTGRES:
        return ["postgres", "sqlite"] if POSTGRES else ["sqlite"]
    return ["postgres"]


# -- secrets ----------------------------------------------------------------------------------
class Secrets:
    """Every token and password the suite hands out; no log may contain any of them."""

    MIN_LEN = 8  # shorter values would match ordinary words by chance

    def __init__(self) -> None:
        self.values: set[str] = set()

    def add(self, *values: str | None) -> None:
        self.values.update(v for v in values if v and len(v) >= self.MIN_LEN)

    def found_in(self, text: str) -> list[str]:
        """The secrets in `text`, masked: a failure message is itself a log."""
        return sorted(f"{v[:3]}…({len(v)} chars)" for v in self.values if v in text)


def remember_secrets(hs: Homeserver, secrets: Secrets) -> KeyRing:
    """The homeserver's guardbot tokens and PWLU secret; returns the key ring whose derived
    passwords (one per named guest) must stay out of the logs too."""
    config = Config(str(hs.config_path))
    config.load()
    secrets.add(hs.as_token, hs.hs_token, hs.antispam_token, config["pwlu.secret"])
    secrets.add("admin-pw", hs.admin.token)
    return KeyRing(config["pwlu.secret"])


def scan_synapse_log(hs: Homeserver, secrets: Secrets) -> None:
    text = hs.synapse.log_path.read_text(errors="replace") if hs.synapse.log_path.exists() else ""
    assert not secrets.found_in(text), f"secrets in {hs.synapse.log_path}: {secrets.found_in(text)}"


# -- bounded helpers --------------------------------------------------------------------------
async def bounded(coros: Iterable[Awaitable[T]], limit: int) -> list[T]:
    """Run coroutines at most `limit` at a time, results in order."""
    gate = asyncio.Semaphore(limit)

    async def one(coro: Awaitable[T]) -> T:
        async with gate:
            return await coro

    return list(await asyncio.gather(*(one(c) for c in coros)))


async def retrying(call: Callable[[], Awaitable[T]], *, timeout: float, what: str) -> T:
    """A client call that may meet a homeserver that is down or limiting: keep trying (like a
    real client would) until it works or `timeout` runs out. Other errors fail at once."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        try:
            return await call()
        except (MatrixError, aiohttp.ClientError, TimeoutError) as e:
            if isinstance(e, MatrixError) and e.status not in (429, 502, 503, 504):
                raise
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: still failing after {timeout}s ({e})") from e
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


# -- the homeserver's record ------------------------------------------------------------------
async def room_history(admin: User, room_id: str, max_pages: int = 50) -> list[dict[str, Any]]:
    """Every event of a room in order, through the admin API (no membership needed)."""
    path = f"/_synapse/admin/v1/rooms/{q(room_id)}/messages"
    events: list[dict[str, Any]] = []
    since: str | None = None
    for _ in range(max_pages):
        query = {"dir": "f", "limit": "1000"} | ({"from": since} if since else {})
        data = await admin.request("GET", path, query=query)
        events += data["chunk"]
        if not data["chunk"] or not data.get("end") or data["end"] == since:
            return events
        since = data["end"]
    raise AssertionError(f"{room_id}: more than {max_pages} pages of history")


@dataclass
class Ledger:
    """What happened to each member of one room, from its timeline."""

    joins: Counter[str] = field(default_factory=Counter)  # transitions into "join"
    invites: Counter[str] = field(default_factory=Counter)  # transitions into "invite"
    bot_leaves: Counter[str] = field(default_factory=Counter)  # leave events sent by guardbot
    touched: set[str] = field(default_factory=set)  # anyone guardbot sent a member event for
    final: dict[str, str] = field(default_factory=dict)
    # A leave by guardbot when the user was not joined or invited: a repeated action that the
    # homeserver did not swallow as a duplicate.
    stray: list[str] = field(default_factory=list)
    bot_messages: list[dict[str, Any]] = field(default_factory=list)
    guest_access: list[tuple[str, str]] = field(default_factory=list)  # (sender, value)


def ledger(events: list[dict[str, Any]], bot: str) -> Ledger:
    out = Ledger()
    for e in events:
        etype, sender = e.get("type"), e.get("sender")
        if etype == "m.room.message" and sender == bot:
            out.bot_messages.append(e)
        elif etype == "m.room.guest_access":
            out.guest_access.append((sender, e["content"].get("guest_access")))
        if etype != "m.room.member" or e.get("state_key") == bot:
            continue
        user, membership = e["state_key"], e["content"].get("membership")
        before = out.final.get(user)
        if membership == "join" and before != "join":
            out.joins[user] += 1
        if membership == "invite" and before != "invite":
            out.invites[user] += 1
        if sender == bot:
            out.touched.add(user)
            if membership == "leave":
                out.bot_leaves[user] += 1
                if before not in ("join", "invite"):
                    out.stray.append(f"{user} removed again while {before}")
        out.final[user] = membership
    return out


async def room_ledger(admin: User, room_id: str, bot: str) -> Ledger:
    return ledger(await room_history(admin, room_id), bot)


async def leave(user: User, room_id: str) -> None:
    await user.request("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/leave", {})


async def settle(
    problems: Callable[[], Awaitable[list[str]]], *, timeout: float, what: str, every: float = 1
) -> None:
    """Poll until `problems()` lists none; on timeout fail with what was still wrong."""
    deadline = time.monotonic() + timeout
    while True:
        left = await problems()
        if not left:
            return
        if time.monotonic() > deadline:
            shown = "; ".join(left[:10]) + (f" (+{len(left) - 10} more)" if len(left) > 10 else "")
            raise AssertionError(f"{what}: not settled after {timeout:.0f}s: {shown}")
        await asyncio.sleep(every)
