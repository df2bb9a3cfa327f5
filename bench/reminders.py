"""9. Reminders due at once: N named guests (1,000; 50 with --quick) all due for their first
reminder at the same moment (an evening's sign-ups, an hour later), on a real Synapse with
guardbot a server admin, as the README sets it up.

Each reminder asks the homeserver what guardbot's `Remind` action really asks: a short-lived
token for the user from the admin API, the password check (user-interactive auth of deleting
no devices: a bcrypt verification), the token's logout, the display name, the DM (created, the
user invited) and the message. Synapse here hashes with `bcrypt_rounds: 4` so that making 3,000
accounts takes seconds; each check still costs one verification.

Three runs, each on its own N fresh named guests, in one Synapse:
- after: the real path (timer, evaluator, executor until nothing is due), reminders side by
  side as the executor runs any actions (OVERALL at a time);
- before: the same path one reminder at a time, as the old scheduler went;
- reference: the same homeserver calls made directly, 16 reminders at a time, no guardbot.
Goal: after within 1.5× of the reference (the homeserver is the limit, not guardbot).
"""

from __future__ import annotations

import asyncio
import pathlib
import tempfile
import time
from collections.abc import Awaitable, Callable

from devtools.named_guest_loop import named_guest_loop
from guardbot.config import Config
from guardbot.guard.executor import OVERALL
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.carrier import DM_MARK
from guardbot.named_guests.passwords import KeyRing

from .common import Options, Row, fmt_ms, started_database
from .synapse_env import Env, q, synapse_with_guardbot

PARALLEL = OVERALL  # the reference's, as many as the executor runs at once
DAY_MS = 86_400_000
SECRET = "bench-reminders-secret"


async def each(items: list[str], work: Callable[[str], Awaitable[None]]) -> None:
    gate = asyncio.Semaphore(PARALLEL)

    async def one(item: str) -> None:
        async with gate:
            await work(item)

    await asyncio.gather(*(one(item) for item in items))


async def make_accounts(env: Env, keys: KeyRing, prefix: str, n: int) -> list[str]:
    users = [f"@{prefix}{i}:{env.synapse.server_name}" for i in range(n)]

    async def make(user_id: str) -> None:
        body = {"password": keys.password(user_id)}
        await env.admin.request("PUT", f"/_synapse/admin/v2/users/{q(user_id)}", body)

    await each(users, make)
    return users


async def path_run(
    hs: Homeserver, users: list[str], keys: KeyRing, root: pathlib.Path, one_at_a_time: bool
) -> float:
    url = f"sqlite:{root / f'pwlu-{time.monotonic_ns()}.db'}"
    async with started_database(url) as database:
        loop = await named_guest_loop(database, hs, SECRET, admin=True)
        if one_at_a_time:
            loop.guard.executor._overall = asyncio.Semaphore(1)
        await loop.name(*users)
        started = time.perf_counter()
        await loop.run_until_idle()
        seconds = time.perf_counter() - started
        sent = 0
        for user_id in users:
            row = await loop.store.get(user_id)
            sent += row.nags_sent if row else 0
        if sent != len(users):
            raise AssertionError(f"{sent} reminders for {len(users)} named guests")
    return seconds


async def direct_run(hs: Homeserver, users: list[str], keys: KeyRing) -> float:
    async def remind(user_id: str) -> None:
        token = await hs.admin_login_as(user_id)
        assert await hs.password_confirms(token, user_id, keys.password(user_id))
        await hs.logout(token)
        await hs.displayname(user_id)
        room_id = await hs.create_dm(user_id, DM_MARK)
        content = {"msgtype": "m.notice", "body": "Hi, set a password: https://example.org/x"}
        await hs.send(room_id, content, f"direct-{user_id}")

    started = time.perf_counter()
    await each(users, remind)
    return time.perf_counter() - started


async def run(opts: Options) -> list[Row]:
    n = 50 if opts.quick else 1000
    extra = {"bcrypt_rounds": 4, "rc_message": {"per_second": 10000, "burst_count": 100000}}
    keys = KeyRing(SECRET)
    with tempfile.TemporaryDirectory(prefix="bench-reminders-") as tmp:
        root = pathlib.Path(tmp)
        async with synapse_with_guardbot(root, extra) as env:
            config_token = _as_token(env)
            hs = Homeserver(env.synapse.base_url, config_token, env.bot_user_id, timeout=120)
            try:
                after_users = await make_accounts(env, keys, "after", n)
                before_users = await make_accounts(env, keys, "before", n)
                direct_users = await make_accounts(env, keys, "direct", n)
                after = await path_run(hs, after_users, keys, root, one_at_a_time=False)
                before = await path_run(hs, before_users, keys, root, one_at_a_time=True)
                reference = await direct_run(hs, direct_users, keys)
            finally:
                await hs.close()
    opts.notes.append(
        f"reminders: {n} due at once; after {fmt_ms(after)} ({n / after:.0f}/s), before"
        f" {fmt_ms(before)} ({n / before:.0f}/s), the same calls directly {PARALLEL} at a time"
        f" {fmt_ms(reference)} ({n / reference:.0f}/s)"
    )
    return [
        Row(
            "9. reminders",
            f"{n} due at once, through guardbot: {fmt_ms(after)}",
            f"the same calls directly: {fmt_ms(reference)}",
            f"{after / reference:.2f}×",
            "≤ 1.5×",
            after <= 1.5 * reference,
        ),
        Row(
            "9. reminders",
            f"before (one at a time): {fmt_ms(before)}",
            f"after: {fmt_ms(after)}",
            f"{before / after:.1f}× faster",
            "",
            None,
        ),
    ]


def _as_token(env: Env) -> str:
    config = Config(str(env.config_path))
    config.load()
    return str(config["appservice.as_token"])
