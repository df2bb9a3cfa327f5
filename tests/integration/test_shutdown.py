"""SIGTERM (docker stop) ends guardbot cleanly even while transactions are pouring in."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess

import aiohttp

from tests.support.homeserver import Homeserver, StartGuardbot


async def test_sigterm_under_load_exits_cleanly(
    homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    bot = await start_guardbot()
    auth = {"Authorization": f"Bearer {homeserver.hs_token}"}
    domain = homeserver.synapse.server_name

    def guest_joins(tag: str) -> list[dict]:
        # Events guardbot must store: each request makes database writes to interrupt.
        return [
            {
                "type": "m.room.member",
                "room_id": "!nowhere",
                "event_id": f"${tag}-{i}",
                "sender": f"@{i}:{domain}",
                "state_key": f"@{i}:{domain}",
                "content": {"membership": "join", "kind": "guest"},
            }
            for i in range(20)
        ]

    stop = asyncio.Event()

    async def client(n: int) -> None:
        async with aiohttp.ClientSession() as session:
            i = 0
            while not stop.is_set():
                i += 1
                url = f"{bot.url}/_matrix/app/v1/transactions/load-{n}-{i}"
                with contextlib.suppress(aiohttp.ClientError):
                    body = {"events": guest_joins(f"{n}-{i}")}
                    async with session.put(url, json=body, headers=auth):
                        pass

    clients = [asyncio.create_task(client(n)) for n in range(4)]
    await asyncio.sleep(1)
    assert bot.proc is not None
    bot.proc.terminate()
    try:
        # Wait for the exit; the timeout only keeps a hung process from hanging the suite.
        # How long a stop takes is benchmark 5's figure (bench/ready.py).
        code = await asyncio.to_thread(bot.proc.wait, 120)
    except subprocess.TimeoutExpired:
        code = None
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert code == 0, f"still running or failed after SIGTERM:\n{bot.log()[-2000:]}"
    assert "Traceback" not in bot.log()
