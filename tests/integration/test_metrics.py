"""What an operator's Prometheus and health checks see."""

from __future__ import annotations

import aiohttp

from tests.support.homeserver import Homeserver, StartGuardbot, free_port
from tests.support.matrix_client import wait_for
from tests.support.rooms import listed_room, wait_removed


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not exported")


async def test_metrics_and_health(homeserver: Homeserver, start_guardbot: StartGuardbot) -> None:
    port = free_port()
    bot = await start_guardbot(
        POLICY__LISTED_ROOMS="kick",
        METRICS__ENABLED="true",
        METRICS__LISTEN_ADDRESS=f"127.0.0.1:{port}",
    )
    alice = await homeserver.user("alice_metrics")
    room_id = await listed_room(homeserver, alice)
    guest = await homeserver.guest()
    await guest.join(room_id)
    await wait_removed(alice, room_id, guest.user_id)

    async def scrape() -> str | None:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                text = await resp.text()
        # guardbot counts a removal just after the homeserver shows it
        return text if sample(text, "guardbot_guests_removed_total") >= 1 else None

    text = await wait_for(scrape, timeout=10, what="the removal to be counted")
    async with aiohttp.ClientSession() as session:
        for path in ("/_matrix/mau/live", "/_matrix/mau/ready"):
            async with session.get(bot.url + path) as resp:
                assert resp.status == 200
    assert sample(text, "guardbot_guests_removed_total") == 1
    assert sample(text, "guardbot_events_received_total") >= 3
    assert sample(text, "guardbot_transaction_seconds_count") >= 1
    assert sample(text, "guardbot_directory_listed_rooms") >= 1
    assert sample(text, "guardbot_directory_poll_seconds_count") >= 1
