"""`python -m devtools.demo`: a throwaway Synapse on loopback with guardbot guarding it.

Shows guests being turned away from listed rooms, then keeps running so a person can try it
with a Matrix client. Everything lives in ./demo-data (or the directory given) and on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import pathlib
import secrets
import signal
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import quote

import aiohttp

from devtools.local_synapse import LocalSynapse
from guardbot import registration
from guardbot.config import Config


def port_or_free(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            s.bind(("127.0.0.1", 0))
            return int(s.getsockname()[1])


class Client:
    def __init__(self, base_url: str, token: str = "") -> None:
        self.base_url, self.token = base_url, token

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, dict]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base_url + path, json=body, headers=headers) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def ok(self, method: str, path: str, body: Any = None) -> dict:
        status, data = await self.call(method, path, body)
        if status >= 400:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data

    async def membership(self, room_id: str, user_id: str) -> str | None:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}"
        status, data = await self.call("GET", path)
        return data.get("membership") if status == 200 else None


async def wait_until(check: Any, timeout: float = 30) -> float:
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise RuntimeError("the demo timed out waiting for guardbot")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


def say(text: str) -> None:
    print(text, flush=True)


def write_guardbot_config(workdir: pathlib.Path, hs: LocalSynapse, port: int) -> pathlib.Path:
    path = workdir / "config.yaml"
    config = hs.guardbot_config(path, port)
    config["database"] = f"sqlite:{workdir / 'guardbot.db'}"
    config["directory.poll_interval"] = 2
    registration.fill_tokens(config)
    config.save()
    registration.write(registration.build(config), str(workdir / "registration.yaml"))
    return path


async def demo(workdir: pathlib.Path) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "synapse" / "homeserver.db").unlink(missing_ok=True)  # a fresh server each run
    (workdir / "guardbot.db").unlink(missing_ok=True)
    hs = LocalSynapse(
        workdir / "synapse",
        appservice_files=[workdir / "registration.yaml"],
        port=port_or_free(8008),
    )
    config_path = write_guardbot_config(workdir, hs, port_or_free(29330))
    config = Config(str(config_path))
    config.load()
    await hs.start()
    bot_proc: subprocess.Popen[bytes] | None = None
    try:
        say(f"✓ Synapse running at {hs.base_url} (server name {hs.server_name})")
        password = secrets.token_urlsafe(9)
        admin_id, admin_token = await hs.register_user("admin", password, admin=True)
        admin = Client(hs.base_url, admin_token)
        bot_id = config.bot_user_id
        await hs.register_appservice_user(
            config["appservice.as_token"], config["appservice.bot_username"]
        )
        await hs.make_admin(admin_token, bot_id)
        log_path = workdir / "guardbot.log"
        bot_proc = subprocess.Popen(
            [sys.executable, "-m", "guardbot", "-c", str(config_path), "-n"],
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
        )
        say(f"✓ guardbot running as {bot_id}, a server admin (its log: {log_path})")

        # A listed room under the default policy, forbid.
        lobby = await create_room(admin, bot_id, "lobby", listed=True)
        await wait_until(lambda: _guest_access_forbidden(admin, lobby))
        say(f"✓ #lobby:{hs.server_name} is listed; guardbot set its guest access to forbidden")
        guest_id, guest_token = await hs.register_guest()
        status, data = await Client(hs.base_url, guest_token).call(
            "POST", f"/_matrix/client/v3/join/{quote(lobby)}", {}
        )
        say(f"✓ guest {guest_id} tries to join #lobby → turned away ({status} {data.get('error')})")

        # An unlisted room with a guest inside, then published.
        games = await create_room(admin, bot_id, "games", listed=False)
        guest2_id, guest2_token = await hs.register_guest()
        await Client(hs.base_url, guest2_token).ok(
            "POST", f"/_matrix/client/v3/join/{quote(games)}", {}
        )
        say(f"✓ guest {guest2_id} joined the unlisted #games: left alone (guests may join by link)")
        await admin.ok(
            "PUT",
            f"/_matrix/client/v3/directory/list/room/{quote(games)}",
            {"visibility": "public"},
        )
        took = await wait_until(lambda: _left(admin, games, guest2_id))
        say(f"✓ #games published → guardbot removed {guest2_id} {took:.1f} s later")

        say(
            f"\nTry it with any Matrix client: homeserver {hs.base_url}, user admin, password"
            f" {password}\nCreate a room, publish it in the directory, join it as a guest, watch."
            f"\nguardbot's config: {config_path}. Press Ctrl-C to stop (all data in {workdir})."
        )
        while bot_proc.poll() is None:
            await asyncio.sleep(1)
        say(f"guardbot stopped unexpectedly; see {log_path}")
    finally:
        if bot_proc is not None and bot_proc.poll() is None:
            bot_proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                bot_proc.wait(10)
        await hs.stop()


async def create_room(admin: Client, bot_id: str, alias: str, *, listed: bool) -> str:
    """A room open to guests, guardbot invited with power to kick and set guest access."""
    body = {
        "preset": "public_chat",
        "visibility": "public" if listed else "private",
        "room_alias_name": alias,
        "name": alias.title(),
        "invite": [bot_id],
        "power_level_content_override": {"users": {bot_id: 50}},
        "initial_state": [{"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}],
    }
    return (await admin.ok("POST", "/_matrix/client/v3/createRoom", body))["room_id"]


async def _guest_access_forbidden(client: Client, room_id: str) -> bool:
    status, data = await client.call(
        "GET", f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.guest_access/"
    )
    return status == 200 and data.get("guest_access") == "forbidden"


async def _left(client: Client, room_id: str, user_id: str) -> bool:
    return await client.membership(room_id, user_id) == "leave"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workdir", nargs="?", default="demo-data", type=pathlib.Path)
    args = parser.parse_args()
    # SIGTERM too must run the clean-up that stops Synapse and guardbot.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(demo(args.workdir.resolve()))


if __name__ == "__main__":
    main()
