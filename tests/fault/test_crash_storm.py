"""guardbot SIGKILLed at random moments while guests storm listed rooms, restarted on the same
database, again and again. Afterwards, from the homeserver's own timelines: every guest who got
into a listed room is out, removed once per arrival; nobody else was touched; a `forbid` room
reopened to guests was closed and explained once per reopening; and every named guest got each
reminder exactly once.

Trials: GUARDBOT_FAULT_SCALE=ci 3, full 10 (per database). GUARDBOT_FAULT_SEED replays a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from typing import Any

import pytest

from tests.support.harness import (
    SCALE,
    Launch,
    MakeDatabase,
    Secrets,
    backends,
    bounded,
    remember_secrets,
    retrying,
    room_ledger,
    settle,
)
from tests.support.homeserver import GuardbotProcess, Homeserver
from tests.support.matrix_client import User
from tests.support.pwlu_client import (
    EVERY,
    MAX,
    Api,
    admin_nags,
    as_user,
    dm_room,
    pwlu_env,
)
from tests.support.rooms import listed_room
from tests.support.storm import Arena, build_arena, guest_wave, storm_until_settled, unique

POLICY_EVENT = "dev.guardbot.policy"


class Chaos:
    """Kills guardbot at a random moment of each trial and brings it back."""

    def __init__(self, bot: GuardbotProcess, rng: random.Random) -> None:
        self.bot = bot
        self.rng = rng
        self.kills = 0
        self.log: list[str] = []

    async def strike(self, within: float) -> None:
        await asyncio.sleep(self.rng.uniform(0.05, within))
        await self.bot.kill()
        self.kills += 1
        down = self.rng.uniform(0, 1.5)
        await asyncio.sleep(down)
        started = time.monotonic()
        await self.bot.start(timeout=60)
        self.log.append(f"down {down:.1f}s, restart {time.monotonic() - started:.1f}s")


async def forbid_room(hs: Homeserver, owner: User) -> str:
    """A listed room whose admins chose `forbid`: guardbot closes it to guests."""
    room_id = await listed_room(hs, owner)
    await owner.set_state(room_id, POLICY_EVENT, {"listed_rooms": "forbid"})
    await wait_closed(owner, room_id)
    return room_id


async def wait_closed(owner: User, room_id: str, timeout: float = 120) -> None:
    async def open_() -> list[str]:
        state = await owner.state(room_id, "m.room.guest_access")
        value = (state or {}).get("guest_access")
        return [] if value == "forbidden" else [f"guest_access is {value}"]

    await settle(open_, timeout=timeout, what=f"{room_id} closed to guests", every=0.2)


async def reopen(arena: Arena, room_id: str, rng: random.Random) -> None:
    """Open the forbid room to guests, let a guest slip in if it can, wait for guardbot."""
    await arena.owner.set_state(room_id, "m.room.guest_access", {"guest_access": "can_join"})
    guest = await arena.hs.guest()
    try:
        await guest.join(room_id)
    except Exception:  # closed again already: the homeserver turned the guest away
        pass
    await wait_closed(arena.owner, room_id, timeout=arena.patience)


async def name_a_guest(hs: Homeserver, bot: GuardbotProcess, secrets: Secrets) -> User:
    """A named guest (PWLU), registered through guardbot's API between crashes."""
    registered = await retrying(
        lambda: Api(bot.url).register_pwlu(unique("named")), timeout=60, what="PWLU register"
    )
    keyring = remember_secrets(hs, secrets)
    secrets.add(registered["access_token"], keyring.password(registered["user_id"]))
    return as_user(hs, registered)


async def verify_forbid_room(arena: Arena, room_id: str, reopens: int) -> None:
    book = await room_ledger(arena.hs.admin, room_id, arena.bot)
    closes = [s for s, v in book.guest_access if s == arena.bot and v == "forbidden"]
    opens = [s for s, v in book.guest_access if s == arena.owner.user_id and v == "can_join"]
    # Once when the admins chose forbid, then once per reopening (each waited for).
    assert (len(opens), len(closes)) == (1 + reopens, 1 + reopens), book.guest_access
    # The policy change is acknowledged once, each reopening explained once.
    assert len(book.bot_messages) == 1 + reopens, [e["content"]["body"] for e in book.bot_messages]
    assert not book.stray, book.stray
    for user in book.touched:  # only guests who slipped in while it was open
        assert user.split(":")[0][1:].isdigit(), f"guardbot touched {user} in the forbid room"
        assert book.bot_leaves[user] <= book.joins[user] and book.final[user] == "leave"


async def verify_unlisted(arena: Arena, room_id: str, guests: set[str]) -> None:
    book = await room_ledger(arena.hs.admin, room_id, arena.bot)
    assert not book.touched, f"guardbot touched {book.touched} in an unlisted room"
    assert {u for u in guests if book.final.get(u) == "join"} == guests


async def verify_reminders(hs: Homeserver, named: list[User]) -> None:
    """Each named guest's DM holds reminders 1..MAX, each once. Waits for the last one, then
    one more interval in case a repeat is still coming."""
    rooms = [await dm_room(user, hs.bot_user_id, timeout=SCALE.converge_s) for user in named]

    async def missing() -> list[str]:
        found = [len(await admin_nags(hs, room)) for room in rooms]
        return [
            f"{n} of {MAX} reminders in {r}" for n, r in zip(found, rooms, strict=True) if n < MAX
        ]

    await settle(missing, timeout=SCALE.converge_s, what="every reminder sent")
    await asyncio.sleep(EVERY + 1)
    for user, room in zip(named, rooms, strict=True):
        sent = [e["content"]["dev.guardbot.pwlu_nag"]["n"] for e in await admin_nags(hs, room)]
        assert sent == list(range(1, MAX + 1)), f"{user.user_id} got reminders {sent}"


async def unlisted_joins(arena: Arena, room_id: str, count: int) -> set[str]:
    """Guests in a room that is not listed: guardbot sees their joins and must leave them be."""
    guests = await bounded((arena.hs.guest() for _ in range(count)), 4)
    await bounded((g.join(room_id) for g in guests), 4)
    return {g.user_id for g in guests}


@pytest.mark.parametrize("backend", backends())
async def test_sigkill_mid_storm_never_misses_repeats_or_touches_others(
    fault_hs: Homeserver,
    launch: Launch,
    make_database: MakeDatabase,
    secrets: Secrets,
    backend: str,
) -> None:
    seed = int(os.environ.get("GUARDBOT_FAULT_SEED", random.randrange(1 << 30)))
    print(f"GUARDBOT_FAULT_SEED={seed}")
    rng = random.Random(seed)
    hs = fault_hs
    env: dict[str, Any] = pwlu_env(hs)
    bot = await launch(hs, await make_database(backend), **env)
    arena = await build_arena(hs)
    closed = await forbid_room(hs, arena.owner)
    unlisted = await arena.owner.create_room(listed=False)
    chaos = Chaos(bot, rng)
    named: list[User] = []
    outsiders: set[str] = set()
    started = time.monotonic()

    for trial in range(SCALE.crash_trials):
        named.append(await name_a_guest(hs, bot, secrets))
        # Roughly how long the wave takes on 2 cores: the kill lands anywhere in it.
        within = max(1.0, SCALE.guests_per_trial / 12)
        wave = guest_wave(arena, SCALE.guests_per_trial, rng, upgrades=1)
        side = asyncio.gather(
            reopen(arena, closed, rng), unlisted_joins(arena, unlisted, 2), chaos.strike(within)
        )
        _, (_, more, _) = await asyncio.wait_for(asyncio.gather(wave, side), 300)
        outsiders |= more
        print(f"trial {trial + 1}: {chaos.log[-1]}, {time.monotonic() - started:.0f}s so far")

    removals = await storm_until_settled(arena, SCALE.converge_s)
    await verify_forbid_room(arena, closed, reopens=SCALE.crash_trials)
    await verify_unlisted(arena, unlisted, outsiders)
    await verify_reminders(hs, named)
    print(
        f"{backend}: {chaos.kills} SIGKILLs, {len(arena.joined)} guests, {removals} removals, "
        f"{len(arena.upgraded)} upgraded, {len(named)} named guests, "
        f"{time.monotonic() - started:.0f}s"
    )
    assert chaos.kills == SCALE.crash_trials
