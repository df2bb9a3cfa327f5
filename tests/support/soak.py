"""Overlapping faults: a seeded soak with one invariant checker (issue 21).

On loopback: a real Synapse asking guardbot at the door, two guardbots on one PostgreSQL database
behind the README's nginx example, mixed traffic for a set time, and a nemesis that overlaps
faults on a schedule drawn from the seed (the same seed, the same schedule). Afterwards one
checker reads only what a person could see — the rooms' timelines and state, the named guests'
DMs, and guardbot's audit log (`guardbot audit`) — and lists every violation with the seed and
the time. `python -m bench soak` runs it and prints the figures; tests/fault/test_soak.py runs
the ci size in CI with a fixed seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yarl import URL

from devtools.nginx_pair import nginx_pair
from guardbot.named_guests.carrier import REMINDER_MARK
from guardbot.named_guests.decider import STOP_ANSWER
from tests.support import postgres
from tests.support.harness import ledger, room_history
from tests.support.holding_proxy import ChaosProxy
from tests.support.homeserver import GuardbotProcess, Homeserver, free_port, running_homeserver
from tests.support.matrix_client import User, q
from tests.support.pwlu_client import Api, dm_in_sync, pwlu_env, unique
from tests.support.tcp_link import Link

KINDS = (
    "synapse_restart",
    "postgres_restart",
    "leader_kill",
    "leader_freeze",
    "leader_db_cut",
    "homeserver_5xx",
    "homeserver_slow",
    "restart_mid_sweep",
)
# After the last fault ends, no guest stays inside a listed room longer than this: the
# directory's reconciliation (two polls of 1 s) finds what the event stream lost, the
# homeserver's transactions resume at the leader's ping, and a removal waits on nothing else.
BOUND_S = 30.0
# Joins and invites the door is not asked to refuse: this close to a fault (either side: a
# process restarting, the homeserver's retries) or to the room's publication.
DOOR_MARGIN_S = 5.0
REMINDERS = 3
REMINDER_EVERY_S = 8
QUIET_S = REMINDER_EVERY_S + 4
EXTRA = {"enable_registration": True, "enable_registration_without_verification": True}


@dataclass(frozen=True)
class Size:
    duration: float  # seconds of traffic; every fault starts and ends within it
    faults: int
    settle: float  # seconds after the traffic for everything to be done


SIZES = {"ci": Size(150, 10, 90), "full": Size(1800, 100, 180)}


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the traffic began
    kind: str
    length: float


def schedule(seed: int, size: Size, kinds_allowed: tuple[str, ...] = KINDS) -> list[Fault]:
    """The nemesis's plan: every kind at least once, the rest drawn, all from the seed. Faults
    overlap where they fall together (the point: a restart while another fault lasts)."""
    rng = random.Random(seed)
    extra = max(0, size.faults - len(kinds_allowed))
    kinds = list(kinds_allowed) + [rng.choice(kinds_allowed) for _ in range(extra)]
    rng.shuffle(kinds)
    latest = size.duration - 25
    faults = [Fault(rng.uniform(5, latest), kind, rng.uniform(2, 12)) for kind in kinds]
    return sorted(faults, key=lambda f: f.at)


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Named:
    user: User
    password_set_at: int | None = None  # the API's answer: no reminder may follow
    dm: str | None = None


@dataclass
class Record:
    """What the traffic and the nemesis did, for the checker and the figures."""

    seed: int
    started_at: int = 0
    guests: set[str] = field(default_factory=set)
    members: set[str] = field(default_factory=set)
    named: dict[str, Named] = field(default_factory=dict)
    listed: dict[str, list[list[int | None]]] = field(default_factory=dict)  # room -> periods
    published_at: dict[str, list[int]] = field(default_factory=dict)
    operations: Counter[str] = field(default_factory=Counter)
    failed_operations: Counter[str] = field(default_factory=Counter)
    faults: list[tuple[str, int, int]] = field(default_factory=list)  # kind, start, end (ms)
    skipped_faults: Counter[str] = field(default_factory=Counter)
    failovers: list[float] = field(default_factory=list)  # seconds to a new leader

    def listed_at(self, room_id: str, at: int) -> bool:
        return any(
            start is not None and start <= at and (end is None or at < end)
            for start, end in self.listed.get(room_id, [])
        )

    def listed_now(self, room_id: str) -> bool:
        periods = self.listed.get(room_id, [])
        return bool(periods) and periods[-1][1] is None

    def near_fault(self, at: int, margin_s: float) -> bool:
        m = margin_s * 1000
        return any(start - m <= at <= end + m for _, start, end in self.faults)

    def faults_end(self) -> int:
        return max((end for _, _, end in self.faults), default=self.started_at)


@dataclass
class Report:
    seed: int
    size: str
    violations: list[str]
    figures: dict[str, Any]


# -- the world -----------------------------------------------------------------------------
class World:
    def __init__(self, hs: Homeserver, workdir: Path, database: str, record: Record) -> None:
        self.hs = hs
        self.workdir = workdir
        self.record = record
        db = URL(database)
        self.links = [Link(db.port or 5432), Link(db.port or 5432)]
        self.database = db
        self.proxy = ChaosProxy(hs.synapse.base_url)
        self.ports = [free_port(), free_port()]
        self.bots: list[GuardbotProcess] = []
        self.held: set[int] = set()  # bots the nemesis holds down (not restarted meanwhile)
        self.stopping = False

    async def start(self) -> None:
        for link in self.links:
            await link.start()
        await self.proxy.start()
        env = pwlu_env(
            self.hs,
            PWLU__NAG__FIRST_AFTER="5s",
            PWLU__NAG__EVERY=f"{REMINDER_EVERY_S}s",
            PWLU__NAG__MAX=str(REMINDERS),
            DIRECTORY__POLL_INTERVAL="1",
            POLICY__LISTED_ROOMS="kick",
            HOMESERVER__ADDRESS=self.proxy.url,
            LOGGING__LOGGERS__GUARDBOT__LEVEL="DEBUG",
        )
        for link, port in zip(self.links, self.ports, strict=True):
            mine = {f"GUARDBOT_{k}": str(v) for k, v in env.items()}
            mine["GUARDBOT_DATABASE"] = str(self.database.with_port(link.port))
            self.bots.append(GuardbotProcess(self.hs, self.workdir, mine, port=port))
        await self.bots[0].start(timeout=60)
        await self.bots[1].start(timeout=60, standby=True)

    async def leader(self) -> int | None:
        for i, bot in enumerate(self.bots):
            if i not in self.held and await bot.is_ready():
                return i
        return None

    async def wait_leader(self, other_than: int | None = None, timeout: float = 60) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            for i, bot in enumerate(self.bots):
                if i != other_than and i not in self.held and await bot.is_ready():
                    return time.monotonic() - started
            await asyncio.sleep(0.2)
        return float("inf")

    async def supervise(self) -> None:
        """As systemd's Restart=always would: a guardbot that exited (killed, or stepping down
        after losing its lease) is started again, as a standby."""
        while not self.stopping:
            for i, bot in enumerate(self.bots):
                proc = bot.proc
                if i in self.held or proc is None or proc.poll() is None:
                    continue
                with contextlib.suppress(Exception):
                    await bot.start(timeout=60, standby=True)
            await asyncio.sleep(0.5)

    async def close(self) -> None:
        self.stopping = True
        for bot in self.bots:
            if bot.proc is not None and bot.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(bot.proc.pid, signal.SIGCONT)
                await bot.stop()
        await self.proxy.stop()
        for link in self.links:
            await link.close()


# -- the nemesis ---------------------------------------------------------------------------
class Nemesis:
    def __init__(self, world: World, faults: list[Fault], rooms: Rooms) -> None:
        self.world = world
        self.faults = faults
        self.rooms = rooms
        self.cluster = postgres.local_cluster(str(world.database))

    async def run(self, began: float) -> None:
        await asyncio.gather(*(self._at(began, fault) for fault in self.faults))

    async def _at(self, began: float, fault: Fault) -> None:
        await asyncio.sleep(max(0.0, began + fault.at - time.monotonic()))
        start = now_ms()
        try:
            done = await getattr(self, fault.kind)(fault.length)
        except Exception as e:  # a fault that could not be injected is reported, not fatal
            self.world.record.skipped_faults[f"{fault.kind} ({type(e).__name__}: {e})"] += 1
            return
        if done is False:
            self.world.record.skipped_faults[fault.kind] += 1
            return
        self.world.record.faults.append((fault.kind, start, now_ms()))

    async def synapse_restart(self, length: float) -> None:
        synapse = self.world.hs.synapse
        await synapse.stop()
        await asyncio.sleep(min(length, 4))
        await synapse.start()

    async def postgres_restart(self, length: float) -> bool:
        if isinstance(self.cluster, str):
            return False
        await asyncio.to_thread(postgres.restart_cluster, *self.cluster)
        return True

    async def _failover(self, leader: int) -> None:
        took = await self.world.wait_leader(other_than=leader)
        self.world.record.failovers.append(took)

    async def leader_kill(self, length: float) -> bool:
        leader = await self.world.leader()
        bot = self.world.bots[leader] if leader is not None else None
        if bot is None or bot.proc is None:
            return False
        os.kill(bot.proc.pid, signal.SIGKILL)  # the supervisor starts it again, as a standby
        await self._failover(leader)  # type: ignore[arg-type]
        return True

    async def leader_freeze(self, length: float) -> bool:
        leader = await self.world.leader()
        if leader is None:
            return False
        bot = self.world.bots[leader]
        assert bot.proc is not None
        self.world.held.add(leader)
        os.kill(bot.proc.pid, signal.SIGSTOP)
        try:
            await asyncio.gather(self._failover(leader), asyncio.sleep(length))
        finally:
            os.kill(bot.proc.pid, signal.SIGCONT)  # it wakes, finds another term, and exits
            self.world.held.discard(leader)
        return True

    async def leader_db_cut(self, length: float) -> bool:
        leader = await self.world.leader()
        if leader is None:
            return False
        link = self.world.links[leader]
        link.cut()
        try:
            await asyncio.gather(self._failover(leader), asyncio.sleep(length))
        finally:
            link.up = True
        return True

    async def homeserver_5xx(self, length: float) -> None:
        self.world.proxy.mode = "fail"
        await asyncio.sleep(length)
        self.world.proxy.mode = "pass"

    async def homeserver_slow(self, length: float) -> None:
        self.world.proxy.mode = "slow"
        await asyncio.sleep(length)
        self.world.proxy.mode = "pass"

    async def restart_mid_sweep(self, length: float) -> bool:
        """A room with guests inside is published: its sweep starts, and the leader dies."""
        room = await self.rooms.publish_a_room_with_guests()
        if room is None:
            return False
        await asyncio.sleep(0.3)
        return await self.leader_kill(length)


# -- the traffic ---------------------------------------------------------------------------
@dataclass
class Room:
    room_id: str
    alias: str
    kind: str  # listed, unlisted, flip


class Rooms:
    def __init__(self, hs: Homeserver, record: Record, rng: random.Random) -> None:
        self.hs = hs
        self.record = record
        self.rng = rng
        self.all: list[Room] = []
        self.owner: User | None = None
        self.flip_lock = asyncio.Lock()

    async def build(self) -> None:
        hs = self.hs
        self.owner = await hs.user(unique("owner"))
        domain = hs.bot_user_id.split(":", 1)[1]
        plan = ["listed", "listed", "policy", "unlisted", "unlisted", "flip", "flip"]
        for kind in plan:
            alias = f"#{unique('soak')}:{domain}"
            state = []
            if kind == "policy":  # its admins choose forbid (dev.guardbot.policy)
                state = [
                    {
                        "type": "dev.guardbot.policy",
                        "state_key": "",
                        "content": {"listed_rooms": "forbid"},
                    }
                ]
            room_id = await self.owner.create_room(
                listed=kind in ("listed", "policy"),
                invite=[hs.bot_user_id],
                power={hs.bot_user_id: 50},
                state=state,
            )
            body = {"room_id": room_id}
            await self.owner.request("PUT", f"/_matrix/client/v3/directory/room/{q(alias)}", body)
            self.all.append(Room(room_id, alias, kind))
            if kind in ("listed", "policy"):
                self.record.listed[room_id] = [[now_ms(), None]]

        async def bot_in(room: Room) -> bool:
            assert self.owner is not None
            return await self.owner.membership(room.room_id, hs.bot_user_id) == "join"

        deadline = time.monotonic() + 60
        while not all([await bot_in(r) for r in self.all]):
            if time.monotonic() > deadline:
                raise RuntimeError("guardbot did not join the soak's rooms")
            await asyncio.sleep(0.5)

    async def flip(self, room: Room | None = None) -> str | None:
        async with self.flip_lock:
            room = room or self.rng.choice([r for r in self.all if r.kind == "flip"])
            assert self.owner is not None
            listed = self.record.listed_now(room.room_id)
            at = now_ms()
            await self.owner.set_listed(room.room_id, not listed)
            periods = self.record.listed.setdefault(room.room_id, [])
            if listed:
                periods[-1][1] = now_ms()  # unlisted from the answer on
            else:
                periods.append([at, None])  # listed from the call on
                self.record.published_at.setdefault(room.room_id, []).append(at)
            return room.room_id

    async def publish_a_room_with_guests(self) -> str | None:
        unlisted = [
            r for r in self.all if r.kind == "flip" and not self.record.listed_now(r.room_id)
        ]
        if not unlisted:
            return None
        room = self.rng.choice(unlisted)
        for _ in range(3):
            guest = await self.hs.guest()
            self.record.guests.add(guest.user_id)
            await guest.join(room.room_id)
        return await self.flip(room)


class Traffic:
    def __init__(self, hs: Homeserver, rooms: Rooms, record: Record, rng: random.Random) -> None:
        self.hs = hs
        self.rooms = rooms
        self.record = record
        self.rng = rng
        self.guests: list[User] = []
        self.members: list[User] = []
        self.api = Api(f"http://127.0.0.1:{hs.guardbot_port}")
        self.ops: dict[str, tuple[int, Callable[[], Awaitable[Any]]]] = {
            "guest_join": (30, self.guest_join),
            "guest_invited": (8, self.guest_invited),
            "guest_leave": (6, self.guest_leave),
            "member_join": (10, self.member_join),
            "flip": (4, self.rooms.flip),
            "policy": (2, self.policy),
            "sign_up": (4, self.sign_up),
            "set_password": (2, self.set_password),
            "stop": (2, self.stop),
        }

    async def run(self, until: float, workers: int = 2) -> None:
        for _ in range(3):
            member = await self.hs.user(unique("member"))
            self.members.append(member)
            self.record.members.add(member.user_id)
        await asyncio.gather(
            *(self._worker(until, random.Random(self.rng.random())) for _ in range(workers))
        )

    async def _worker(self, until: float, rng: random.Random) -> None:
        names = list(self.ops)
        weights = [self.ops[n][0] for n in names]
        while time.monotonic() < until:
            name = rng.choices(names, weights)[0]
            self.record.operations[name] += 1
            try:
                await asyncio.wait_for(self.ops[name][1](), 20)
            except Exception:  # a refusal, a fault (an nginx error page, a timeout): counted
                self.record.failed_operations[name] += 1
            await asyncio.sleep(rng.uniform(0.05, 0.3))

    def _room(self) -> Room:
        return self.rng.choice(self.rooms.all)

    async def _guest(self) -> User:
        if self.guests and self.rng.random() < 0.5:
            return self.rng.choice(self.guests)
        guest = await self.hs.guest()
        self.guests.append(guest)
        self.record.guests.add(guest.user_id)
        return guest

    async def guest_join(self) -> None:
        guest, room = await self._guest(), self._room()
        target = room.alias if self.rng.random() < 0.5 else room.room_id
        await guest.request("POST", f"/_matrix/client/v3/join/{q(target)}", {})

    async def guest_invited(self) -> None:
        guest, room = await self._guest(), self._room()
        assert self.rooms.owner is not None
        await self.rooms.owner.invite(room.room_id, guest.user_id)

    async def guest_leave(self) -> None:
        if not self.guests:
            return
        guest, room = self.rng.choice(self.guests), self._room()
        await guest.request("POST", f"/_matrix/client/v3/rooms/{q(room.room_id)}/leave", {})

    async def member_join(self) -> None:
        member, room = self.rng.choice(self.members), self._room()
        await member.join(room.room_id)

    async def policy(self) -> None:
        room = next(r for r in self.rooms.all if r.kind == "policy")
        assert self.rooms.owner is not None
        choice = self.rng.choice(["kick", "forbid"])
        path = f"/_matrix/client/v3/rooms/{q(room.room_id)}/state/dev.guardbot.policy/"
        await self.rooms.owner.request("PUT", path, {"listed_rooms": choice})

    async def sign_up(self) -> None:
        registered = await self.api.register_pwlu(unique("named"))
        user = User(self.hs.synapse.base_url, registered["user_id"], registered["access_token"])
        self.record.named[user.user_id] = Named(user)

    async def set_password(self) -> None:
        waiting = [n for n in self.record.named.values() if n.password_set_at is None]
        if not waiting:
            return
        named = self.rng.choice(waiting)
        status, _ = await self.api.set_password(
            named.user.token, "my own soak password " + unique("pw")
        )
        if status == 200:
            named.password_set_at = now_ms()

    async def stop(self) -> None:
        candidates = [n for n in self.record.named.values() if n.dm is None]
        if not candidates:
            return
        named = self.rng.choice(candidates)
        room = await _dm_of(named.user, self.hs.bot_user_id)
        if room is None:
            return
        named.dm = room
        txn = f"stop{time.time_ns()}"
        path = f"/_matrix/client/v3/rooms/{q(room)}/send/m.room.message/{txn}"
        await named.user.request("PUT", path, {"msgtype": "m.text", "body": "stop"})


async def _dm_of(user: User, bot: str) -> str | None:
    """The named guest's DM with guardbot, joined if it is an invite; None if there is none."""
    data = await user.request("GET", "/_matrix/client/v3/sync", query={"timeout": "0"})
    return await dm_in_sync(user, bot, data)


# -- the checker ---------------------------------------------------------------------------
class Checker:
    """Reads what a person could see afterwards and lists every broken invariant."""

    def __init__(
        self, hs: Homeserver, rooms: Rooms, record: Record, audit: list[dict[str, Any]]
    ) -> None:
        self.hs = hs
        self.rooms = rooms
        self.record = record
        self.audit = audit
        self.bot = hs.bot_user_id
        self.figures: dict[str, Any] = {}

    def _v(self, at: int | None, text: str) -> str:
        when = time.strftime("%H:%M:%S", time.gmtime(at / 1000)) if at else "end"
        return f"seed {self.record.seed} at {when}: {text}"

    async def check(self) -> list[str]:
        violations: list[str] = []
        longest = 0.0
        faults_end = self.record.faults_end()
        for room in self.rooms.all:
            events = await room_history(self.hs.admin, room.room_id)
            book = ledger(events, self.bot)
            violations += [self._v(None, f"{room.room_id}: {s}") for s in book.stray]
            for user, leaves in book.bot_leaves.items():
                if user not in self.record.guests:
                    violations.append(
                        self._v(None, f"{user}, no guest, removed from {room.room_id}")
                    )
                elif leaves > (arrivals := book.joins[user] + book.invites[user]):
                    why = f"{user} removed {leaves} times from {room.room_id}, {arrivals} arrivals"
                    violations.append(self._v(None, why))
            stays, door = self._stays(room.room_id, events)
            violations += door
            for user, entered, left in stays:
                if not self.record.listed_at(room.room_id, entered) and not (
                    left is None and self.record.listed_now(room.room_id)
                ):
                    continue
                inside_until = left if left is not None else now_ms()
                after = max(entered, faults_end)
                longest = max(longest, (inside_until - after) / 1000)
                if left is None and self.record.listed_now(room.room_id):
                    violations.append(
                        self._v(entered, f"guest {user} still inside listed {room.room_id}")
                    )
                elif inside_until > after + BOUND_S * 1000:
                    took = (inside_until - after) / 1000
                    why = f"guest {user} inside listed {room.room_id} {took:.1f}s after the faults"
                    violations.append(self._v(entered, why))
        self.figures["longest_inside_after_faults_s"] = round(max(longest, 0.0), 1)
        violations += await self._reminders()
        lost, twice = self._actions()
        violations += lost + twice
        self.figures["actions_lost"] = len(lost)
        return violations

    def _stays(
        self, room_id: str, events: list[dict[str, Any]]
    ) -> tuple[list[tuple[str, int, int | None]], list[str]]:
        """Each guest's stays in the room (entered, left or None), and the door's misses: a
        guest who joined or was invited into it while it was listed, far from any fault."""
        stays: list[tuple[str, int, int | None]] = []
        open_since: dict[str, int] = {}
        door: list[str] = []
        for e in events:
            if e.get("type") != "m.room.member":
                continue
            user, membership, at = (
                e["state_key"],
                e["content"].get("membership"),
                e["origin_server_ts"],
            )
            if user not in self.record.guests:
                continue
            if membership in ("join", "invite") and user not in open_since:
                open_since[user] = at
                published = self.record.published_at.get(room_id, [])
                fresh = any(abs(at - p) < DOOR_MARGIN_S * 1000 for p in published)
                if (
                    self.record.listed_at(room_id, at)
                    and not fresh
                    and not self.record.near_fault(at, DOOR_MARGIN_S)
                ):
                    door.append(
                        self._v(at, f"the door let guest {user} {membership} listed {room_id}")
                    )
            elif membership not in ("join", "invite") and user in open_since:
                stays.append((user, open_since.pop(user), at))
        stays += [(user, since, None) for user, since in open_since.items()]
        return stays, door

    async def _reminders(self) -> list[str]:
        violations = []
        sent = 0
        for named in self.record.named.values():
            room = named.dm or await _dm_of(named.user, self.bot)
            if room is None:
                continue
            events = await named.user.timeline(room)
            numbers: Counter[int] = Counter()
            stopped_at = None
            for e in events:
                content = e.get("content", {})
                if e.get("sender") != self.bot or e.get("type") != "m.room.message":
                    continue
                if content.get("body") == STOP_ANSWER:
                    stopped_at = stopped_at or e["origin_server_ts"]
                mark = content.get(REMINDER_MARK)
                if not isinstance(mark, dict):
                    continue
                n, at = mark.get("n"), e["origin_server_ts"]
                numbers[n] += 1
                sent += 1
                who = named.user.user_id
                if isinstance(n, int) and n > REMINDERS:
                    violations.append(self._v(at, f"reminder {n} to {who}, beyond the {REMINDERS}"))
                if named.password_set_at is not None and at > named.password_set_at:
                    violations.append(
                        self._v(at, f"reminder {n} to {who} after their password was set")
                    )
                if stopped_at is not None and at > stopped_at:
                    violations.append(self._v(at, f"reminder {n} to {who} after they said stop"))
            violations += [
                self._v(None, f"reminder {n} to {named.user.user_id} sent {c} times")
                for n, c in numbers.items()
                if c > 1
            ]
        self.figures["reminders_sent"] = sent
        return violations

    def _actions(self) -> tuple[list[str], list[str]]:
        """From the audit log: every decided action has its outcome, and no more than one."""
        decided: Counter[tuple[str, str | None, str | None]] = Counter()
        finished: Counter[tuple[str, str | None, str | None]] = Counter()
        for r in self.audit:
            what = r.get("what", "")
            key_of = (r.get("room_id"), r.get("user_id"))
            if what.startswith("decide ") and r.get("result") == "queued":
                decided[(what.removeprefix("decide "), *key_of)] += 1
            elif r.get("state") in ("done", "skipped", "failed", "dry_run"):
                finished[(what, *key_of)] += 1
        lost = [
            self._v(
                None, f"{kind} for {user or room}: {n} decided, {finished[(kind, room, user)]} done"
            )
            for (kind, room, user), n in decided.items()
            if finished[(kind, room, user)] < n
        ]
        twice = [
            self._v(
                None, f"{kind} for {user or room}: {n} done, {decided[(kind, room, user)]} decided"
            )
            for (kind, room, user), n in finished.items()
            if (kind, room, user) in decided and n > decided[(kind, room, user)]
        ]
        return lost, twice


# -- the run ---------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def throwaway_database(server: str) -> AsyncIterator[str]:
    import asyncpg

    name = "guardbot_soak_" + os.urandom(6).hex()
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield str(URL(server).with_path("/" + name))
    finally:
        conn = await asyncpg.connect(server)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


def read_audit(config_path: Path, database: str, since: int) -> list[dict[str, Any]]:
    env = {**os.environ, "GUARDBOT_DATABASE": database}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "guardbot",
            "audit",
            "-c",
            str(config_path),
            "--since",
            str(since),
            "--limit",
            "1000000",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"guardbot audit failed: {done.stderr.strip()}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


async def soak(
    seed: int, size_name: str, workdir: Path, server: str, kinds: tuple[str, ...] = KINDS
) -> Report:
    size = SIZES[size_name]
    rng = random.Random(seed)
    record = Record(seed)
    faults = schedule(seed, size, kinds)
    (workdir / "hs").mkdir(parents=True, exist_ok=True)
    async with (
        running_homeserver(workdir / "hs", EXTRA, door=True) as hs,
        throwaway_database(server) as database,
    ):
        world = World(hs, workdir, database, record)
        with nginx_pair(workdir, hs.guardbot_port, world.ports):
            try:
                await world.start()
                rooms = Rooms(hs, record, rng)
                await rooms.build()
                supervisor = asyncio.create_task(world.supervise())
                traffic = Traffic(hs, rooms, record, rng)
                record.started_at = now_ms()
                began = time.monotonic()
                nemesis = Nemesis(world, faults, rooms)
                await asyncio.gather(traffic.run(began + size.duration), nemesis.run(began))
                since = record.started_at - 60_000

                def audit_now() -> list[dict[str, Any]]:
                    return read_audit(hs.config_path, database, since)

                await _settle(world, hs, rooms, record, size.settle, audit_now)
                world.stopping = True
                supervisor.cancel()
                audit = audit_now()
                (workdir / "audit.jsonl").write_text("".join(json.dumps(r) + "\n" for r in audit))
                checker = Checker(hs, rooms, record, audit)
                violations = await checker.check()
            finally:
                await world.close()
    figures = {
        "faults": dict(Counter(kind for kind, _, _ in record.faults)),
        "faults_not_injected": dict(record.skipped_faults),
        "operations": dict(record.operations),
        "operations_failed": dict(record.failed_operations),
        "failovers": len(record.failovers),
        "failover_s": sorted(round(t, 1) for t in record.failovers),
        "violations": len(violations),
        **checker.figures,
    }
    return Report(seed, size_name, violations, figures)


async def _settle(
    world: World,
    hs: Homeserver,
    rooms: Rooms,
    record: Record,
    timeout: float,
    audit: Callable[[], list[dict[str, Any]]],
) -> None:
    """After the traffic: a leader again, then until no guest is inside a listed room and
    every action the audit log says was decided has its outcome there (or the time is up: the
    checker reports what is left)."""
    await world.wait_leader(timeout=60)
    deadline = time.monotonic() + timeout
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        inside = 0
        for room in rooms.all:
            if not record.listed_now(room.room_id):
                continue
            members = await hs.admin.request(
                "GET", f"/_synapse/admin/v1/rooms/{q(room.room_id)}/members"
            )
            inside += sum(1 for m in members.get("members", []) if m in record.guests)
        if not inside:
            records = await asyncio.to_thread(audit)
            if len(records) != seen:  # still deciding (a named guest's next reminder, say)
                seen, quiet_since = len(records), time.monotonic()
            lost, _ = Checker(hs, rooms, record, records)._actions()
            # Done: nothing lost, and nothing new in the log for longer than a reminder's
            # interval (a decision read a moment before its outcome is not lost).
            if not lost and time.monotonic() - quiet_since > QUIET_S:
                return
        await asyncio.sleep(2)
