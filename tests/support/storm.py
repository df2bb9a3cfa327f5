"""A storm of guests against listed `kick` rooms, with bystanders who must never be touched, and
the verdict on what guardbot did, read from the rooms' timelines.

Why the cast looks like this: Synapse swallows a repeated kick (same sender, same content) and
refuses one of a user who already left, so a plain repeat leaves no trace. The cast makes
repeats and wrong decisions visible anyway: guests who come back after their kick (each join
must cost exactly one removal, no more, no fewer), guests upgraded after their kick who then
come back (any stale or repeated kick would now hit a full account), invited guests (the invite
is revoked once), renamed guests (their events lose `kind: guest`), and ordinary members who
leave and come back throughout (never touched).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .harness import bounded, leave, retrying, room_ledger, settle
from .homeserver import Homeserver
from .matrix_client import User, upgrade_guest
from .rooms import listed_room

ROLES = ("plain", "plain", "plain", "rename", "rejoin", "invited")


def unique(name: str) -> str:
    return f"{name}_{secrets.token_hex(3)}"


@dataclass
class Arena:
    hs: Homeserver
    owner: User
    kick_rooms: list[str]
    members: list[User]
    guests: set[str] = field(default_factory=set)  # must end up out of every kick room
    upgraded: set[str] = field(default_factory=set)  # kicked once as guests, then welcome
    joined: set[str] = field(default_factory=set)  # guests whose (first) join went through
    # How long a storm client keeps retrying a call (the homeserver may be down for a while).
    patience: float = 120

    @property
    def bot(self) -> str:
        return self.hs.bot_user_id

    async def retry(self, call: Callable[[], Awaitable[Any]], what: str) -> Any:
        return await retrying(call, timeout=self.patience, what=what)


async def build_arena(hs: Homeserver, rooms: int = 3, members: int = 2) -> Arena:
    """Listed kick rooms with guardbot in them (guardbot must be running) and members."""
    owner = await hs.user(unique("owner"))
    kick_rooms = [await listed_room(hs, owner) for _ in range(rooms)]
    people = [await hs.user(unique("member")) for _ in range(members)]
    for person in people:
        for room_id in kick_rooms:
            await person.join(room_id)
    return Arena(hs, owner, kick_rooms, people)


async def wait_out(arena: Arena, room_id: str, user_id: str) -> None:
    async def still_in() -> list[str]:
        membership = await arena.retry(
            lambda: arena.owner.membership(room_id, user_id), "membership"
        )
        return [] if membership == "leave" else [f"{user_id} is {membership}"]

    await settle(still_in, timeout=arena.patience, what=f"{user_id} removed", every=0.2)


async def play(arena: Arena, guest: User, role: str, rng: random.Random) -> None:
    """One guest's part in the storm."""
    room_id = rng.choice(arena.kick_rooms)
    arena.guests.add(guest.user_id)
    if role == "invited":
        await arena.retry(lambda: arena.owner.invite(room_id, guest.user_id), "invite")
        arena.joined.add(guest.user_id)
        return
    await arena.retry(lambda: guest.join(room_id), "guest join")
    arena.joined.add(guest.user_id)
    if role == "rename":
        # The rename re-sends the member event without `kind: guest`; guardbot may already
        # have removed the guest (then the homeserver has no room to update: fine).
        await arena.retry(lambda: guest.set_displayname(unique("renamed")), "rename")
    elif role in ("rejoin", "upgrade"):
        await wait_out(arena, room_id, guest.user_id)
        if role == "upgrade":
            arena.guests.discard(guest.user_id)
            guest = await upgrade_guest(guest)
            arena.upgraded.add(guest.user_id)
        await arena.retry(lambda: guest.join(room_id), "join again")


async def churn(arena: Arena, member: User, rng: random.Random) -> None:
    """An ordinary member leaves a kick room and comes back: a fresh join guardbot must judge."""
    room_id = rng.choice(arena.kick_rooms)
    await arena.retry(lambda: leave(member, room_id), "member leave")
    await arena.retry(lambda: member.join(room_id), "member join")


async def register_guests(arena: Arena, count: int, concurrency: int = 8) -> list[User]:
    return await bounded((arena.hs.guest() for _ in range(count)), concurrency)


async def let_loose(
    arena: Arena, guests: list[User], rng: random.Random, *, upgrades: int = 0, concurrency: int = 8
) -> None:
    """All the guests at once, each in its role, with the members' churn among them."""
    roles = [rng.choice(ROLES) for _ in guests]
    roles[:upgrades] = ["upgrade"] * min(upgrades, len(roles))
    rng.shuffle(roles)
    plays = [play(arena, g, r, rng) for g, r in zip(guests, roles, strict=True)]
    plays += [churn(arena, m, rng) for m in arena.members]
    rng.shuffle(plays)
    await bounded(plays, concurrency)


async def guest_wave(arena: Arena, count: int, rng: random.Random, *, upgrades: int = 0) -> None:
    """Register `count` guests, then let them all loose at once."""
    await let_loose(arena, await register_guests(arena, count), rng, upgrades=upgrades)


async def kick_room_problems(arena: Arena) -> list[str]:
    """What is not (yet) as it must end: every guest out, every upgraded guest back in."""
    problems = []
    for room_id in arena.kick_rooms:
        book = await room_ledger(arena.hs.admin, room_id, arena.bot)
        for user in arena.guests & set(book.final):
            if book.final[user] in ("join", "invite"):
                problems.append(f"guest {user} still {book.final[user]} in {room_id}")
        for user in arena.upgraded & set(book.final):
            if book.final[user] != "join":
                problems.append(f"upgraded {user} is {book.final[user]} in {room_id}")
    return problems


async def verify_kick_rooms(arena: Arena) -> int:
    """The exact verdict once settled; returns the number of removals seen."""
    removals = 0
    seen: set[str] = set()
    for room_id in arena.kick_rooms:
        book = await room_ledger(arena.hs.admin, room_id, arena.bot)
        where = f"in {room_id}"
        assert not book.stray, f"repeated removals {where}: {book.stray}"
        wrongly = book.touched - arena.guests - arena.upgraded
        assert not wrongly, f"guardbot touched non-guests {where}: {sorted(wrongly)}"
        for user in arena.guests & (set(book.joins) | set(book.invites)):
            arrivals = book.joins[user] + book.invites[user]
            assert book.bot_leaves[user] == arrivals, (
                f"guest {user} {where}: {arrivals} joins/invites, "
                f"{book.bot_leaves[user]} removals by guardbot"
            )
            assert book.final[user] == "leave", f"guest {user} still {book.final[user]} {where}"
        for user in arena.upgraded & set(book.joins):
            # One kick as a guest; back in as a full account, and left alone since.
            assert (book.joins[user], book.bot_leaves[user], book.final[user]) == (2, 1, "join"), (
                f"upgraded {user} {where}: joins {book.joins[user]}, removals "
                f"{book.bot_leaves[user]}, now {book.final[user]}"
            )
        for member in arena.members:
            assert book.final.get(member.user_id) == "join", f"{member.user_id} not in {where}"
        removals += sum(book.bot_leaves.values())
        seen |= set(book.joins) | set(book.invites)
    missing = arena.joined - seen
    assert not missing, f"joins the homeserver does not show: {sorted(missing)[:5]}"
    return removals


async def storm_until_settled(arena: Arena, timeout: float) -> int:
    await settle(lambda: kick_room_problems(arena), timeout=timeout, what="the storm's end state")
    # A repeat would come after the end state was reached: give one a chance to show.
    await asyncio.sleep(3)
    return await verify_kick_rooms(arena)
