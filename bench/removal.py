"""2. Guest join → removal on a real Synapse, against Synapse's own removal.

guardbot (the real CLI, `policy.listed_rooms: kick`, SQLite, as server admin) guards a listed
room. Per sample a fresh guest joins; the time is from sending the join to the kick event's
`origin_server_ts` (seen by the room's admin through a long-polling /sync).

Reference, in the same run and interleaved with it: in an unlisted room guardbot leaves alone,
a guest is already joined and the room's admin sets `m.room.guest_access` to `forbidden`, which
makes Synapse itself remove the guest; the time is from sending that state event to the guest's
leave event's `origin_server_ts`. Then that guest tries to join again and is refused (403):
what the `forbid` policy (guardbot's default) gives every guest after the first.

From guardbot's side (bench.timed_guardbot's timestamps): from the transaction carrying the
join reaching its handler to the kick request leaving, which covers the inbox write,
evaluation, queueing, and the homeserver calls guardbot makes before a kick (the guest's status
from the admin API, their current member state). "guardbot's own" is that less the time spent
waiting for those calls' answers: what guardbot itself costs in wall time (which includes
waiting for a CPU that Synapse holds; the CPU time per removal does not, but counts all of
guardbot's work while sampling, the reference room's events and directory polls too). The
"split" lines show where the end-to-end time goes: Synapse's part before guardbot hears of the
join, guardbot's, and Synapse's part from the kick request to the kick event.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from .common import Options, Row, percentile
from .synapse_env import Client, Env, guardbot_process, q, synapse_with_guardbot

SYNC_FILTER = json.dumps(
    {
        "presence": {"not_types": ["*"]},
        "account_data": {"not_types": ["*"]},
        "room": {
            "state": {"not_types": ["*"]},
            "ephemeral": {"not_types": ["*"]},
            "account_data": {"not_types": ["*"]},
            "timeline": {"types": ["m.room.member"], "limit": 50},
        },
    }
)


class Watcher:
    """The rooms' admin following member events as they happen, through /sync."""

    def __init__(self, admin: Client) -> None:
        self.admin = admin
        self.since = ""
        self.seen: list[dict[str, Any]] = []

    async def start(self) -> None:
        data = await self.admin.request(
            "GET", "/_matrix/client/v3/sync", query={"filter": SYNC_FILTER, "timeout": "0"}
        )
        self.since = data["next_batch"]

    async def wait(self, user_id: str, membership: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.seen:
                content = event.get("content") or {}
                if event["state_key"] == user_id and content.get("membership") == membership:
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"{user_id} never reached {membership}")
            query = {"filter": SYNC_FILTER, "timeout": "10000", "since": self.since}
            data = await self.admin.request("GET", "/_matrix/client/v3/sync", query=query)
            self.since = data["next_batch"]
            for room in data.get("rooms", {}).get("join", {}).values():
                self.seen += room.get("timeline", {}).get("events", [])


async def _room(env: Env, *, listed: bool, with_bot: bool) -> str:
    body: dict[str, Any] = {
        "preset": "public_chat",
        "visibility": "public" if listed else "private",
        "initial_state": [
            {
                "type": "m.room.guest_access",
                "state_key": "",
                "content": {"guest_access": "can_join"},
            }
        ],
    }
    if with_bot:
        body["invite"] = [env.bot_user_id]
        body["power_level_content_override"] = {"users": {env.bot_user_id: 50}}
    data = await env.admin.request("POST", "/_matrix/client/v3/createRoom", body)
    return str(data["room_id"])


async def _guardbot_sample(
    env: Env, watcher: Watcher, room_id: str, guest: Client
) -> tuple[str, float, float]:
    """(guest, join sent, kick event's origin_server_ts), wall clock in seconds."""
    started = time.time()
    await guest.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})
    leave = await watcher.wait(guest.user_id, "leave")
    if leave["sender"] != env.bot_user_id:
        raise AssertionError(f"{guest.user_id} left by {leave['sender']}, not a kick")
    return guest.user_id, started, leave["origin_server_ts"] / 1000


async def _synapse_sample(env: Env, watcher: Watcher, room_id: str, guest: Client) -> float:
    path = f"/_matrix/client/v3/rooms/{q(room_id)}/state/m.room.guest_access/"
    await env.admin.request("PUT", path, {"guest_access": "can_join"})
    await guest.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})
    await watcher.wait(guest.user_id, "join")
    started = time.time()
    await env.admin.request("PUT", path, {"guest_access": "forbidden"})
    leave = await watcher.wait(guest.user_id, "leave")
    if leave["sender"] != guest.user_id:  # Synapse's own removal is the guest "leaving"
        raise AssertionError(f"{guest.user_id} removed by {leave['sender']}, not by Synapse")
    return leave["origin_server_ts"] / 1000 - started


async def _refused_sample(room_id: str, guest: Client) -> float:
    """What `forbid` rooms give: the guest's next join refused at the door, request to 403."""
    started = time.perf_counter()
    try:
        await guest.request("POST", f"/_matrix/client/v3/join/{q(room_id)}", {})
    except RuntimeError as e:
        if "403" not in str(e):
            raise
        return time.perf_counter() - started
    raise AssertionError("a guest joined a room closed to guests")


@dataclass
class Guardbot:
    """What guardbot did about one guest: when the join reached it, when it sent the kick,
    and how long of that it waited for the homeserver's answers about that guest."""

    received: float
    kick: float
    waiting: float


def _guardbot_side(timings: pathlib.Path) -> dict[str, Guardbot]:
    records = [json.loads(line) for line in timings.read_text().splitlines()]
    received: dict[str, float] = {}
    out = {}
    for record in records:
        if record["what"] == "received" and record["membership"] == "join":
            received.setdefault(record["user"], record["t"])
        elif record["what"] == "kick" and record["user"] in received:
            start, end = received[record["user"]], record["t"]
            quoted = q(record["user"])
            waiting = sum(
                r["answered"] - r["t"]
                for r in records
                if r["what"] == "request" and quoted in r["path"] and start <= r["t"] < end
            )
            out[record["user"]] = Guardbot(start, end, waiting)
    return out


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used, from /proc: what it cost whatever the
    machine's load, unlike wall time."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


async def run(opts: Options) -> list[Row]:
    samples, warmup = (10, 2) if opts.quick else (40, 4)
    with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
        root = pathlib.Path(tmp)
        timings = root / "timings.jsonl"
        async with (
            synapse_with_guardbot(root) as env,
            guardbot_process(
                env, root, timings, POLICY__LISTED_ROOMS="kick", DIRECTORY__POLL_INTERVAL="1"
            ) as proc,
        ):
            watcher = Watcher(env.admin)
            await watcher.start()
            listed = await _room(env, listed=True, with_bot=True)
            unlisted = await _room(env, listed=False, with_bot=False)
            await watcher.wait(env.bot_user_id, "join")  # guardbot accepted the invite
            await asyncio.sleep(2)  # and its directory poll has seen the room listed
            guests = [await env.guest() for _ in range(2 * (samples + warmup))]
            ours, theirs, refused = [], [], []
            cpu_before = cpu_seconds(proc.pid)
            for i in range(samples + warmup):  # interleaved: both see the same noise
                ours.append(await _guardbot_sample(env, watcher, listed, guests[2 * i]))
                theirs.append(await _synapse_sample(env, watcher, unlisted, guests[2 * i + 1]))
                refused.append(await _refused_sample(unlisted, guests[2 * i + 1]))
            cpu = (cpu_seconds(proc.pid) - cpu_before) / (samples + warmup)
            ours, theirs, refused = ours[warmup:], theirs[warmup:], refused[warmup:]
            side = _guardbot_side(timings)
    e2e = [leave - started for _, started, leave in ours]
    rows = []
    for p in (50, 95):
        a, b = percentile(e2e, p), percentile(theirs, p)
        rows.append(
            Row(
                f"2 join→removal p{p}",
                f"{a * 1000:.0f} ms",
                f"{b * 1000:.0f} ms Synapse's own",
                f"{a / b:.2f}x",
                "≤1.5x" if p == 50 else "(info)",
                a <= 1.5 * b if p == 50 else None,
            )
        )
    gb = [side[user] for user, _, _ in ours]
    total = [g.kick - g.received for g in gb]
    own = [g.kick - g.received - g.waiting for g in gb]
    for p in (50, 95):
        t, o = percentile(total, p), percentile(own, p)
        rows.append(
            Row(
                f"2 guardbot's own p{p}",
                _ms(o),
                f"{_ms(t)} incl. waiting for Synapse",
                f"{o / t:.2f}",
                "≤5 ms" if p == 50 else "(info)",
                o <= 0.005 if p == 50 else None,
            )
        )
    rows.append(
        Row(
            "2 guardbot CPU time per removal",
            _ms(cpu),
            "all its work while sampling, / samples",
            "",
            "(info)",
            None,
        )
    )
    rows.append(
        Row(
            "2 forbid policy: guest refused at the door p50",
            _ms(percentile(refused, 50)),
            "join request → 403",
            "",
            "(info)",
            None,
        )
    )
    # Where the end-to-end time goes, p50 of each part; the parts add up to about the whole.
    delivered = [side[user].received - started for user, started, _ in ours]
    kicked = [leave - side[user].kick for user, _, leave in ours]
    median = percentile(e2e, 50)
    for label, part in (
        ("Synapse: join sent → delivered to guardbot", delivered),
        ("guardbot: delivered → kick sent", total),
        ("Synapse: kick sent → kick event", kicked),
    ):
        rows.append(
            Row(
                f"2 split p50, {label}",
                _ms(percentile(part, 50)),
                f"{median * 1000:.0f} ms end to end",
                "",
                "(info)",
                None,
            )
        )
    opts.notes.append(
        f"2: {len(ours)} samples each, after {warmup} warm-up; Synapse {_synapse_version()};"
        " origin_server_ts has 1 ms resolution"
    )
    return rows


def _synapse_version() -> str:
    try:
        import synapse

        return str(synapse.__version__)
    except ImportError:
        return "?"
