"""`python -m devtools.demo`: a throwaway Synapse on loopback with guardbot guarding it, set up
as the README recommends: the door (synapse-http-antispam), `policy.listed_rooms: kick` and
named guests.

Tells the story step by step: a guest refused at the door of a listed room in guardbot's own
words; the same person picking a username through guardbot (a named guest), joining, reminded by
DM to set a password and setting one on the claim page; a guest removed when the room they sit
in gets published. Then it keeps running so a person can try it with a Matrix client (`--once` exits
instead, 0 if every step happened). Everything lives in ./demo-data (or the directory given)
and on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import html
import pathlib
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

from devtools.local_synapse import LocalSynapse
from guardbot import registration
from guardbot.config import Config

NAMED_GUEST = "alice"
# Short enough to watch: the first reminder a few seconds after the named guest registers.
NAG_FIRST_AFTER, NAG_EVERY = "5s", "30s"
STEP_TIMEOUT_S = 60.0
LOG_TAIL_LINES = 30


class StoryError(RuntimeError):
    """A step of the story did not happen as told."""


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

    async def call(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                method, self.base_url + path, json=body, params=query, headers=headers
            ) as resp,
        ):
            data = await resp.json(content_type=None)
            return resp.status, data if isinstance(data, dict) else {}

    async def ok(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None
    ) -> dict[str, Any]:
        status, data = await self.call(method, path, body, query)
        if status >= 400:
            raise StoryError(f"{method} {path}: {status} {data}")
        return data

    async def membership(self, room_id: str, user_id: str) -> str | None:
        path = f"/_matrix/client/v3/rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}"
        status, data = await self.call("GET", path)
        return data.get("membership") if status == 200 else None


def say(text: str) -> None:
    print(text, flush=True)


def tail(path: pathlib.Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log yet)"


@dataclass
class Guest:
    user_id: str
    token: str


@dataclass
class Guardbot:
    proc: subprocess.Popen[bytes]
    url: str
    log_path: pathlib.Path

    def check_alive(self) -> None:
        # Without this a crashed guardbot would only show as a step timing out a minute later.
        if self.proc.poll() is not None:
            raise StoryError(
                f"guardbot exited with code {self.proc.returncode}; the tail of"
                f" {self.log_path}:\n{tail(self.log_path)}"
            )

    async def wait_until(
        self, check: Callable[[], Awaitable[Any]], what: str, timeout: float = STEP_TIMEOUT_S
    ) -> tuple[Any, float]:
        """check()'s first truthy answer and how long it took to come."""
        started = time.monotonic()
        while True:
            self.check_alive()
            result = await check()
            if result:
                return result, time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise StoryError(
                    f"no {what} after {timeout:.0f} s; the tail of guardbot's log"
                    f" ({self.log_path}):\n{tail(self.log_path)}"
                )
            await asyncio.sleep(0.1)

    async def ready(self) -> bool:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with (
                aiohttp.ClientSession() as session,
                session.get(self.url + "/_matrix/mau/ready") as resp,
            ):
                return resp.status == 200
        return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def write_guardbot_config(workdir: pathlib.Path, hs: LocalSynapse, port: int) -> Config:
    """The README's set-up: kick, the door's token and named guests, with reminders sped up."""
    path = workdir / "config.yaml"
    config = hs.guardbot_config(path, port)
    url = f"http://127.0.0.1:{port}"
    config["database"] = f"sqlite:{workdir / 'guardbot.db'}"
    config["directory.poll_interval"] = 2
    config["policy.listed_rooms"] = "kick"
    config["pwlu.enabled"] = True
    config["pwlu.public_url"] = url  # the claim links point here; nothing is in front of it
    config["pwlu.nag.first_after"] = NAG_FIRST_AFTER
    config["pwlu.nag.every"] = NAG_EVERY
    registration.fill_tokens(config)
    config.save()
    registration.write(registration.build(config), str(workdir / "registration.yaml"))
    # The entry `guardbot -g` prints for homeserver.yaml, so Synapse asks guardbot at the door.
    hs.extra_config["modules"] = [registration.door_module(config, config["antispam.token"])]
    return config


def refusal_text(config: Config) -> str:
    """What the door answers a guest, as guardbot builds it from the config."""
    hint = config["antispam.account_hint"] if config["pwlu.enabled"] else ""
    return str(config["antispam.refusal"]).replace("{account_hint}", hint)


async def demo(workdir: pathlib.Path, *, once: bool) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "synapse" / "homeserver.db").unlink(missing_ok=True)  # a fresh server each run
    (workdir / "guardbot.db").unlink(missing_ok=True)
    hs = LocalSynapse(
        workdir / "synapse",
        appservice_files=[workdir / "registration.yaml"],
        # Named guests are ordinary accounts: the homeserver must let clients register.
        extra_config={
            "enable_registration": True,
            "enable_registration_without_verification": True,
        },
        port=port_or_free(8008),
    )
    config = write_guardbot_config(workdir, hs, port_or_free(29330))
    await hs.start()
    bot: Guardbot | None = None
    try:
        say(f"✓ Synapse running at {hs.base_url} (server name {hs.server_name}), with the door")
        password = secrets.token_urlsafe(9)
        _, admin_token = await hs.register_user("admin", password, admin=True)
        admin = Client(hs.base_url, admin_token)
        bot_id = config.bot_user_id
        await hs.register_appservice_user(
            config["appservice.as_token"], config["appservice.bot_username"]
        )
        await hs.make_admin(admin_token, bot_id)
        bot = start_guardbot(workdir, config)
        await bot.wait_until(bot.ready, "answer from guardbot's /_matrix/mau/ready")
        say(
            f"✓ guardbot running as {bot_id}, a server admin, policy kick, named guests on"
            f" (its log: {bot.log_path})"
        )

        lobby, guest = await refused_at_the_door(hs, admin, bot, config)
        named = await named_guest_story(hs, bot, config, lobby, guest)
        await removed_on_publication(hs, admin, bot, config)

        say(
            f"\nTry it with any Matrix client: homeserver {hs.base_url}, user admin, password"
            f" {password} (or {named[0]} with password {named[1]}).\nCreate a room, publish it"
            f" in the directory, join it as a guest, watch.\nguardbot's config:"
            f" {config.path}. Named guests register at {bot.url}/_guardbot/v1/pwlu/register."
        )
        if once:
            say("✓ the whole story ran; stopping (--once)")
            return
        say(f"Press Ctrl-C to stop (all data in {workdir}).")
        while bot.proc.poll() is None:
            await asyncio.sleep(1)
        raise StoryError(f"guardbot stopped unexpectedly; see {bot.log_path}")
    finally:
        if bot is not None:
            bot.stop()
        await hs.stop()


def start_guardbot(workdir: pathlib.Path, config: Config) -> Guardbot:
    log_path = workdir / "guardbot.log"
    with log_path.open("ab") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "guardbot", "-c", str(config.path), "-n"],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
    return Guardbot(proc, str(config["appservice.address"]), log_path)


async def refused_at_the_door(
    hs: LocalSynapse, admin: Client, bot: Guardbot, config: Config
) -> tuple[str, Guest]:
    """The listed room, and the guest it turned away."""
    say("\n1. A guest at the door of a listed room")
    lobby = await create_room(admin, config.bot_user_id, "lobby", listed=True)
    await bot.wait_until(
        lambda: _joined(admin, lobby, config.bot_user_id), "guardbot in #lobby (it was invited)"
    )
    say(f"✓ #lobby:{hs.server_name} is listed in the directory; guardbot is in it")
    guest_id, guest_token = await hs.register_guest()
    status, data = await Client(hs.base_url, guest_token).call(
        "POST", f"/_matrix/client/v3/join/{quote(lobby)}", {}
    )
    error = str(data.get("error", ""))
    if status != 403 or error != refusal_text(config):
        raise StoryError(
            f"the guest {guest_id} should have been refused at the door in guardbot's words"
            f" ({refusal_text(config)!r}); the join answered {status} {data}"
        )
    say(
        f"✓ guest {guest_id} tries to join #lobby → refused at the door in guardbot's words"
        f" ({status}): “{error}”"
    )
    return lobby, Guest(guest_id, guest_token)


async def named_guest_story(
    hs: LocalSynapse, bot: Guardbot, config: Config, lobby: str, guest: Guest
) -> tuple[str, str]:
    """The refused guest becomes a named guest, joins, is reminded and sets a password;
    returns the account's user ID and password."""
    say("\n2. The same guest picks a username through guardbot (a named guest)")
    user_id, token = await register_named_guest(bot, NAMED_GUEST, guest.user_id, guest.token)
    registered_at = time.monotonic()
    named = Client(hs.base_url, token)
    await named.ok("POST", f"/_matrix/client/v3/join/{quote(lobby)}", {})
    if await named.membership(lobby, user_id) != "join":
        raise StoryError(f"{user_id} joined #lobby but is not a member of it")
    say(f"✓ {user_id} joins #lobby: let in (a named guest is an ordinary account)")

    link, body = await reminder(named, bot, config)
    say(
        f"✓ a reminder from {config.bot_user_id} arrives by DM"
        f" {time.monotonic() - registered_at:.1f} s after registering (pwlu.nag.first_after"
        f" {NAG_FIRST_AFTER}):"
    )
    for line in body.splitlines():
        say(f"    {line}")

    password = "demo-" + secrets.token_urlsafe(12)
    await claim(link, password)
    say(f"✓ {user_id} opens the link and sets a password on the claim page: “Password set”")
    await password_login(hs, user_id, password)
    say(f"✓ {user_id} logs in with that password: it works")
    return user_id, password


async def register_named_guest(
    bot: Guardbot, username: str, guest_id: str, guest_token: str
) -> tuple[str, str]:
    api = Client(bot.url)
    path = "/_guardbot/v1/pwlu/register"
    # The guest's token goes in the body, so the new account takes over the guest's rooms.
    body: dict[str, Any] = {"username": username, "guest_access_token": guest_token}
    status, data = await api.call("POST", path, body)
    if status != 401 or "session" not in data:
        raise StoryError(
            f"guardbot should have answered the homeserver's sign-up steps (401 with"
            f" flows and a session); it answered {status} {data}"
        )
    stages = [" → ".join(flow.get("stages", [])) for flow in data.get("flows", [])]
    say(
        f"✓ guest {guest_id} picks the username {username!r} through guardbot: 401, the"
        f" homeserver's sign-up steps ({'; '.join(stages)})"
    )
    body["auth"] = {"type": "m.login.dummy", "session": data["session"]}
    status, data = await api.call("POST", path, body)
    if status != 200 or "access_token" not in data:
        raise StoryError(f"the named guest's registration answered {status} {data}")
    user_id = str(data["user_id"])
    say(f"✓ sent again with m.login.dummy: 200, registered named guest {user_id} (no password)")
    return user_id, str(data["access_token"])


async def reminder(named: Client, bot: Guardbot, config: Config) -> tuple[str, str]:
    """The claim link and text of guardbot's first reminder, from the DM it invites to."""
    bot_id = config.bot_user_id
    since: list[str] = []  # incremental: Synapse caches identical initial syncs for minutes

    async def invited() -> str | None:
        query = {"timeout": "1000"} | ({"since": since[0]} if since else {})
        data = await named.ok("GET", "/_matrix/client/v3/sync", query=query)
        since[:] = [data["next_batch"]]
        for room_id, room in data.get("rooms", {}).get("invite", {}).items():
            events = room.get("invite_state", {}).get("events", [])
            if any(e.get("sender") == bot_id for e in events):
                return str(room_id)
        return None

    dm, _ = await bot.wait_until(invited, f"invite to a DM from {bot_id}")
    await named.ok("POST", f"/_matrix/client/v3/join/{quote(dm)}", {})
    claim_link = re.compile(
        re.escape(config["pwlu.public_url"].rstrip("/")) + r"/_guardbot/claim/[A-Za-z0-9_-]+"
    )

    async def message() -> tuple[str, str] | None:
        path = f"/_matrix/client/v3/rooms/{quote(dm)}/messages"
        data = await named.ok("GET", path, query={"dir": "f", "limit": "100"})
        for event in data.get("chunk", []):
            body = event.get("content", {}).get("body", "")
            found = claim_link.search(body) if event.get("sender") == bot_id else None
            if found:
                return found.group(0), body
        return None

    found, _ = await bot.wait_until(message, "reminder with a claim link in the DM")
    return found


async def claim(link: str, password: str) -> None:
    """The claim page as a browser uses it: open the link, send the form back."""
    # unsafe: keep the CSRF cookie for an IP address (127.0.0.1), as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(link) as resp:
            page = await resp.text()
        found = re.search(r'name="csrf" value="([^"]+)"', page)
        if resp.status != 200 or not found:
            raise StoryError(f"the claim page answered {resp.status} without its form:\n{page}")
        form = {
            "csrf": html.unescape(found.group(1)),
            "new_password": password,
            "confirm_password": password,
        }
        async with session.post(link, data=form) as resp:
            page = await resp.text()
        if resp.status != 200 or "Password set" not in page:
            raise StoryError(f"the claim page did not set the password ({resp.status}):\n{page}")


async def password_login(hs: LocalSynapse, user_id: str, password: str) -> None:
    body = {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": user_id},
        "password": password,
    }
    status, data = await Client(hs.base_url).call("POST", "/_matrix/client/v3/login", body)
    if status != 200 or data.get("user_id") != user_id:
        raise StoryError(f"the password login as {user_id} answered {status} {data}")
    # Only to show it works: the session is not kept.
    await Client(hs.base_url, str(data["access_token"])).ok("POST", "/_matrix/client/v3/logout", {})


async def removed_on_publication(
    hs: LocalSynapse, admin: Client, bot: Guardbot, config: Config
) -> None:
    say("\n3. A guest inside a room that becomes listed")
    games = await create_room(admin, config.bot_user_id, "games", listed=False)
    guest_id, guest_token = await hs.register_guest()
    await Client(hs.base_url, guest_token).ok("POST", f"/_matrix/client/v3/join/{quote(games)}", {})
    say(f"✓ guest {guest_id} joined the unlisted #games: left alone (guests may join by link)")
    await admin.ok(
        "PUT", f"/_matrix/client/v3/directory/list/room/{quote(games)}", {"visibility": "public"}
    )
    _, took = await bot.wait_until(
        lambda: _left(admin, games, guest_id), f"removal of {guest_id} from #games"
    )
    say(f"✓ #games published → guardbot removed {guest_id} {took:.1f} s later")


async def create_room(admin: Client, bot_id: str, alias: str, *, listed: bool) -> str:
    """A room open to guests, guardbot invited with power to kick."""
    body = {
        "preset": "public_chat",
        "visibility": "public" if listed else "private",
        "room_alias_name": alias,
        "name": alias.title(),
        "invite": [bot_id],
        "power_level_content_override": {"users": {bot_id: 50}},
        "initial_state": [{"type": "m.room.guest_access", "content": {"guest_access": "can_join"}}],
    }
    return str((await admin.ok("POST", "/_matrix/client/v3/createRoom", body))["room_id"])


async def _joined(client: Client, room_id: str, user_id: str) -> bool:
    return await client.membership(room_id, user_id) == "join"


async def _left(client: Client, room_id: str, user_id: str) -> bool:
    return await client.membership(room_id, user_id) == "leave"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "workdir",
        nargs="?",
        default="demo-data",
        type=pathlib.Path,
        help="where the demo keeps everything (default: ./demo-data)",
    )
    parser.add_argument(
        "--once",
        action="store_true",
        help="tell the story, then stop (exit 0 if every step happened) instead of running on",
    )
    args = parser.parse_args()
    # SIGTERM too must run the clean-up that stops Synapse and guardbot.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        asyncio.run(demo(args.workdir.resolve(), once=args.once))
    except KeyboardInterrupt:
        pass
    except (RuntimeError, aiohttp.ClientError) as e:  # StoryError, or Synapse failing to start
        say(f"✗ the demo failed: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
