"""4. The reminders' path: does its work follow the reminders due, not the named guests known?

The real path (the timer's look, the evaluator deciding each `ReminderDue`, the executor
carrying out each `Remind`, the evaluator counting each `ReminderWent`, until nothing is due)
on the real stores, SQLite and PostgreSQL, with the homeserver replaced by an instant stand-in
(every login probe works, every DM and message is made at once), so what is timed is
guardbot's own work and its database's. Each due reminder costs the real steps: two
observations decided and stored, the action queued, re-read, probed, its DM made, its claim
link stored, sent, finished and audited.

Tables: N named guests, D of them due now, half of the rest waiting for a later reminder, the
other half done. A few reminders are handled first, off the clock, so that each run starts
with warm connections (a fresh PostgreSQL database's first statements cost milliseconds each).
Compared: 100k/1k due against 10k/1k due (same work, ten times the table), and 100k/10 due
against a hundredth of 100k/1k due.

Also, on a real Synapse (open registration) with guardbot as its real CLI (SQLite): how late the
reminders come, on the tests' schedule (first after 1 s, then every 2 s, 3 of them). Named guests
register through guardbot's API, first one at a time (what the tests see; the goal line), then a
dozen at once (their reminders fall due together); each joins the DM guardbot invites it to, as
a client does. A reminder's lateness is its event's `origin_server_ts` less its due time,
registration + first_after + (n - 1) * every, counted from when registration answered (guardbot
confirms the account just before it answers, so a reminder shows at most that little early).
"""

from __future__ import annotations

import asyncio
import json
import pathlib
import secrets
import tempfile
import time
from typing import Any

from devtools.named_guest_loop import named_guest_loop
from guardbot.core.clock import Clock
from guardbot.db.named_guest_store import ACTIVE, DONE, NamedGuestRow, NamedGuestStore
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.carrier import DM_MARK, REMINDER_MARK
from guardbot.named_guests.passwords import KeyRing

from . import synapse_env
from .common import (
    Options,
    Row,
    database_kinds,
    database_url,
    fmt_ms,
    percentile,
    started_database,
)
from .synapse_env import Env, guardbot_process, q, synapse_with_guardbot

DAY_MS = 86_400_000


def now_ms() -> int:
    return Clock().now_ms()


class InstantHomeserver(Homeserver):
    """Answers what the scheduler asks at once; counts the messages sent."""

    def __init__(self) -> None:
        super().__init__("http://bench.invalid", "as-token", "@guardbot:example.org")
        self.sent = 0

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> dict[str, Any]:
        if path.endswith("/login"):
            return {"access_token": "probe-token"}
        if path.endswith("/createRoom"):
            return {"room_id": f"!dm-{body['invite'][0]}"}
        if "/send/" in path:
            self.sent += 1
            return {"event_id": f"$nag{self.sent}"}
        if path.endswith("/displayname"):
            return {"displayname": "Named Guest"}
        return {}


WARM = 5  # reminders handled before the clock starts: connections and statements warmed up
LATER = 300 * DAY_MS  # marks the rows that become due only once the warm-up is done


async def fill(store: NamedGuestStore, total: int, due: int, key_id: str) -> None:
    """`total` named guests: WARM due now, `due` that become due after the warm-up, the rest
    half waiting for a later reminder, half done."""
    now = now_ms()
    rows = []
    for n in range(total):
        if n < WARM:
            state, next_at = ACTIVE, now - 1000 - n
        elif n < WARM + due:
            state, next_at = ACTIVE, now + LATER + n
        elif n % 2:
            state, next_at = ACTIVE, now + DAY_MS + n
        else:
            state, next_at = DONE, None
        rows.append((f"@pwlu{n}:example.org", key_id, state, now - DAY_MS, next_at))
    async with store.db.acquire() as conn, conn.transaction():
        await conn.executemany(
            "INSERT INTO pwlu (user_id, key_id, state, created_at, next_nag_at)"
            " VALUES ($1, $2, $3, $4, $5)",
            rows,
        )


async def make_due(store: NamedGuestStore) -> None:
    now = now_ms()
    await store.db.execute(
        "UPDATE pwlu SET next_nag_at = $1 WHERE next_nag_at >= $2", now - 1000, now + LATER // 2
    )


async def due_plan(store: NamedGuestStore, kind: str) -> str:
    """How the database runs the scheduler's due query: an index range, or the whole table."""
    query = (
        "SELECT user_id FROM pwlu WHERE next_nag_at IS NOT NULL AND next_nag_at <= $1"
        " ORDER BY next_nag_at LIMIT 50"
    )
    if kind == "sqlite":
        rows = await store.db.fetch("EXPLAIN QUERY PLAN " + query, now_ms())
        return "; ".join(str(r["detail"]) for r in rows)
    plan = await store.db.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + query, now_ms())
    node = json.loads(plan)[0]["Plan"]
    while node.get("Plans") and node["Node Type"] == "Limit":
        node = node["Plans"][0]
    return f"{node['Node Type']} using {node.get('Index Name', '-')}, {node['Actual Rows']} rows"


async def one_pass(
    kind: str, postgres: str, total: int, due: int, plans: list[str] | None = None
) -> float:
    """Seconds for the scheduler to handle every due reminder and find the next due time."""
    async with database_url(kind, postgres) as url, started_database(url) as database:
        store = NamedGuestStore(database)
        keys = KeyRing("bench-secret")
        await fill(store, total, due, keys.current)
        if kind == "postgres":
            await database.execute("ANALYZE pwlu")
        hs = InstantHomeserver()
        loop = await named_guest_loop(database, hs, "bench-secret")
        # A fresh database's first statements pay for plans and caches: not the path's.
        await loop.run_until_idle()
        await make_due(store)
        if kind == "postgres":
            await database.execute("ANALYZE pwlu")
        plan = await due_plan(store, kind) if plans is not None else ""
        read = [0, 0]  # rows the due queries handed back, queries
        due_query = store.due

        async def counted(now: int, limit: int = 50) -> list[NamedGuestRow]:
            rows = await due_query(now, limit)
            read[0] += len(rows)
            read[1] += 1
            return rows

        store.due = counted  # type: ignore[method-assign]
        loop.store.due = counted  # type: ignore[method-assign]
        started = time.perf_counter()
        await loop.run_until_idle()
        next_at = await store.next_due_at()
        seconds = time.perf_counter() - started
        if plans is not None:
            plans.append(
                f"4 {kind}, {total} rows, {due} due: the due query {plan}; the pass read"
                f" {read[0]} rows in {read[1]} due queries"
            )
        if hs.sent != WARM + due or (next_at or 0) < now_ms():
            raise AssertionError(f"sent {hs.sent} of {due} due reminders")
        assert DM_MARK  # the DMs were made through the real code path
    return seconds


# -- on a real Synapse: how late the reminders come ---------------------------------------------
FIRST_AFTER, EVERY, MAX = 1.0, 2.0, 3  # the tests' schedule (tests/support/pwlu_client.py)
OPEN_REGISTRATION = {"enable_registration": True, "enable_registration_without_verification": True}


async def _register(env: Env, api: str, username: str) -> tuple[synapse_env.Client, float]:
    """A named guest registered through guardbot (the homeserver's dummy stage completed as a
    client does), and when the registration answered."""
    url = f"{api}/_guardbot/v1/pwlu/register"
    body: dict[str, Any] = {"username": username}
    for _ in range(2):
        async with env.session.post(url, json=body) as resp:
            data = await resp.json(content_type=None)
            answered = time.time()
        if resp.status == 200:
            user_id, token = data["user_id"], data["access_token"]
            return synapse_env.Client(env.session, env.synapse.base_url, user_id, token), answered
        if resp.status != 401 or "session" not in data:
            break
        body["auth"] = {"type": "m.login.dummy", "session": data["session"]}
    raise RuntimeError(f"named guest registration failed: {resp.status} {data}")


async def _join_dm(env: Env, user: synapse_env.Client, timeout: float = 60) -> str:
    """Join the room guardbot invites the named guest to (incremental sync, as a client)."""
    deadline = time.monotonic() + timeout
    since = ""
    while time.monotonic() < deadline:
        query = {"timeout": "1000"} | ({"since": since} if since else {})
        data = await user.request("GET", "/_matrix/client/v3/sync", query=query)
        since = data["next_batch"]
        for room_id, room in data.get("rooms", {}).get("invite", {}).items():
            events = room.get("invite_state", {}).get("events", [])
            if any(e.get("sender") == env.bot_user_id for e in events):
                await user.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})
                return room_id
    raise TimeoutError(f"no DM from guardbot for {user.user_id} after {timeout:.0f}s")


async def _reminders(env: Env, room_id: str, timeout: float = 60) -> list[dict[str, Any]]:
    """guardbot's reminders in the DM once all MAX have come (the admin reads the room)."""
    deadline = time.monotonic() + timeout
    path = f"/_synapse/admin/v1/rooms/{q(room_id)}/messages"
    while True:
        data = await env.admin.request("GET", path, query={"dir": "f", "limit": "100"})
        found = [
            e
            for e in data["chunk"]
            if e["sender"] == env.bot_user_id and REMINDER_MARK in e["content"]
        ]
        if len(found) >= MAX or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def _lateness_of_one(env: Env, api: str) -> list[float]:
    user, registered_at = await _register(env, api, f"late-{secrets.token_hex(3)}")
    room_id = await _join_dm(env, user)
    sent = await _reminders(env, room_id)
    numbers = [e["content"][REMINDER_MARK]["n"] for e in sent]
    if numbers != list(range(1, MAX + 1)):
        raise AssertionError(f"{user.user_id} got reminders {numbers}, not 1..{MAX}")
    due = [registered_at + FIRST_AFTER + (n - 1) * EVERY for n in numbers]
    return [e["origin_server_ts"] / 1000 - at for e, at in zip(sent, due, strict=True)]


async def lateness(opts: Options) -> list[Row]:
    alone, together = (2, 4) if opts.quick else (4, 12)
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        root = pathlib.Path(tmp)
        async with (
            synapse_with_guardbot(root, OPEN_REGISTRATION) as env,
            guardbot_process(
                env,
                root,
                root / "timings.jsonl",
                PWLU__ENABLED="true",
                PWLU__PUBLIC_URL=f"http://127.0.0.1:{env.guardbot_port}",
                PWLU__NAG__FIRST_AFTER=f"{FIRST_AFTER}s",
                PWLU__NAG__EVERY=f"{EVERY}s",
                PWLU__NAG__MAX=str(MAX),
                PWLU__RATE_LIMIT__PER_SECOND="100",
                PWLU__RATE_LIMIT__BURST_COUNT="1000",
            ),
        ):
            api = f"http://127.0.0.1:{env.guardbot_port}"
            one = [x for _ in range(alone) for x in await _lateness_of_one(env, api)]
            crowd = await asyncio.gather(*(_lateness_of_one(env, api) for _ in range(together)))
    many = [x for xs in crowd for x in xs]
    schedule = f"due: registered + {FIRST_AFTER:g} s + (n-1) x {EVERY:g} s"
    rows = []
    for label, late, goal in (
        ("one named guest at a time", one, True),
        (f"{together} named guests at once", many, False),
    ):
        name = f"4 nags on real Synapse, {label}: reminder lateness"
        rows.append(Row(f"{name} p50", fmt_ms(percentile(late, 50)), schedule, "", "(info)", None))
        spread = f"{len(late)} reminders; earliest {fmt_ms(min(late))}"
        rows.append(
            Row(
                f"{name} max",
                fmt_ms(max(late)),
                spread,
                "",
                "≤1.5 s" if goal else "(info)",
                max(late) <= 1.5 if goal else None,
            )
        )
    return rows


async def run(opts: Options) -> list[Row]:
    scale = 10 if opts.quick else 1
    big, small, many, few = 100_000 // scale, 10_000 // scale, 1_000 // scale, 10
    rows = []
    for kind in database_kinds(opts):
        idle = min([await one_pass(kind, opts.postgres, big, 0) for _ in range(3)])
        bigs, smalls = [], []
        for r in range(1 if opts.quick else 3):  # interleaved: both sizes see the same noise
            bigs.append(await one_pass(kind, opts.postgres, big, many, None if r else opts.notes))
            smalls.append(await one_pass(kind, opts.postgres, small, many))
        big_many, small_many = min(bigs), min(smalls)
        big_few = min([await one_pass(kind, opts.postgres, big, few) for _ in range(3)])
        per_big, per_small = big_many / many, small_many / many
        rows.append(
            Row(
                f"4 nags {kind}: {big // 1000}k, {many} due",
                f"{fmt_ms(big_many)} ({per_big * 1000:.2f} ms/due)",
                f"{per_small * 1000:.2f} ms/due at {small // 1000}k, {many} due",
                f"{per_big / per_small:.2f}x",
                "≤1.5x",
                per_big <= 1.5 * per_small,
            )
        )
        share = big_many * few / many
        rows.append(
            Row(
                f"4 nags {kind}: {big // 1000}k, {few} due",
                fmt_ms(big_few),
                f"{fmt_ms(share)} = {few}/{many} of {many} due",
                f"{big_few / share:.2f}x",
                "≤1.5x",
                big_few <= 1.5 * share,
            )
        )
        rows.append(
            Row(f"4 nags {kind}: {big // 1000}k, none due", fmt_ms(idle), "", "", "(info)", None)
        )
    return rows + await lateness(opts)
