"""8. A crowd picks names at once: N people (50; 12 with --quick), each from their own address,
become named guests through guardbot at the same moment, against the same crowd registering
with Synapse's own /register directly, in the same run, on one Synapse with its default
registration limit (rc_registration: 3 at once, then one every ~6 s per address).

Set up as docs/named-guests.md advises: clients reach Synapse on a listener that believes
X-Forwarded-For (as behind a reverse proxy), and guardbot talks to a loopback listener of its
own that does too; guardbot trusts 127.0.0.1 as the proxy in front of it. Each person's address
is named in X-Forwarded-For (the benchmark is the proxy). A person's time runs from their first
request to their 200, through the user-interactive auth (dummy stage) and any 429 waits.
Goal: the median within 1.2× of the direct crowd's, and nobody over 10 s.
"""

from __future__ import annotations

import asyncio
import pathlib
import secrets
import statistics
import tempfile
import time
from typing import Any

import aiohttp

from .common import Options, Row, fmt_ms
from .synapse_env import guardbot_process, synapse_with_guardbot

STOCK = {
    "enable_registration": True,
    "enable_registration_without_verification": True,
    "rc_registration": {"per_second": 0.17, "burst_count": 3},
}


async def pick(
    session: aiohttp.ClientSession, url: str, address: str, body: dict[str, Any]
) -> tuple[float, int]:
    """One person through /register's user-interactive auth: (seconds to 200, 429s met)."""
    started, limited = time.monotonic(), 0
    headers = {"X-Forwarded-For": address}
    for _ in range(200):
        async with session.post(url, json=body, headers=headers) as resp:
            data = await resp.json(content_type=None)
        if resp.status == 200:
            return time.monotonic() - started, limited
        if resp.status == 429:
            limited += 1
            await asyncio.sleep(data.get("retry_after_ms", 1000) / 1000)
        elif resp.status == 401 and "session" in data:
            body = {**body, "auth": {"type": "m.login.dummy", "session": data["session"]}}
        else:
            raise RuntimeError(f"{url}: {resp.status} {data}")
    raise RuntimeError(f"{url}: no account after 200 tries")


async def crowd(
    session: aiohttp.ClientSession, url: str, people: int, subnet: int, password: bool
) -> tuple[list[float], int]:
    def body() -> dict[str, Any]:
        name = f"crowd-{secrets.token_hex(4)}"
        return (
            {"username": name, "password": "a long pass " + name}
            if password
            else {"username": name}
        )

    answers = await asyncio.gather(
        *(pick(session, url, f"10.{subnet}.0.{i + 1}", body()) for i in range(people))
    )
    return [t for t, _ in answers], sum(n for _, n in answers)


async def run(opts: Options) -> list[Row]:
    people = 12 if opts.quick else 50
    with tempfile.TemporaryDirectory(prefix="bench-crowd-") as tmp:
        root = pathlib.Path(tmp)
        async with synapse_with_guardbot(root, STOCK, guardbot_listener=True) as env:
            overrides = {
                "PWLU__ENABLED": "true",
                "PWLU__PUBLIC_URL": f"http://127.0.0.1:{env.guardbot_port}",
                "PWLU__TRUSTED_PROXIES": "[127.0.0.1]",
                "PWLU__RATE_LIMIT__BURST_COUNT": "100",
            }
            async with guardbot_process(env, root, root / "timings", **overrides):
                guardbot = f"http://127.0.0.1:{env.guardbot_port}/_guardbot/v1/pwlu/register"
                direct = (
                    f"http://127.0.0.1:{env.synapse.guardbot_listener}/_matrix/client/v3/register"
                )
                through, limited = await crowd(env.session, guardbot, people, 1, password=False)
                own, own_limited = await crowd(env.session, direct, people, 2, password=True)
    median, reference = statistics.median(through), statistics.median(own)
    slowest = max(through)
    opts.notes.append(
        f"crowd: {people} people; through guardbot median {fmt_ms(median)}, slowest"
        f" {fmt_ms(slowest)}, {limited} × 429; directly median {fmt_ms(reference)}, slowest"
        f" {fmt_ms(max(own))}, {own_limited} × 429"
    )
    return [
        Row(
            "8. crowd",
            f"{people} names through guardbot: median {fmt_ms(median)}",
            f"directly: median {fmt_ms(reference)}",
            f"{median / reference:.2f}×",
            "≤ 1.2×",
            median <= 1.2 * reference,
        ),
        Row(
            "8. crowd",
            f"slowest through guardbot: {fmt_ms(slowest)}",
            f"directly: {fmt_ms(max(own))}",
            "",
            "≤ 10 s",
            slowest <= 10,
        ),
    ]
