"""The join a homeserver loses across a restart while guardbot is busy (element-hq/synapse#11637),
played out the same way on Synapse alone and with workers: only what restarts differs."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .homeserver import GuardbotProcess, Homeserver
from .matrix_client import User
from .rooms import listed_room, wait_removed
from .storm import unique


@dataclass
class FrozenJoins:
    owner: User
    room_id: str
    first: User  # removed before the freeze, so the room's count without guests is stored
    held: User  # joined while guardbot was frozen: its transaction was in flight
    lost: User  # joined behind it: queued in the homeserver's memory, lost in the restart


async def joins_behind_a_frozen_guardbot(
    hs: Homeserver, bot: GuardbotProcess, restart: Callable[[], Awaitable[None]]
) -> FrozenJoins:
    """guardbot frozen with a transaction in flight, a second join queued behind it, the
    homeserver side restarted by `restart`, guardbot woken; returns once both are out."""
    owner = await hs.user(unique("owner"))
    room_id = await listed_room(hs, owner)
    first, held, lost = [await hs.guest() for _ in range(3)]
    await first.join(room_id)
    await wait_removed(owner, room_id, first.user_id)
    await asyncio.sleep(3)  # a few polls: the room's count without guests is stored

    assert bot.proc is not None
    bot.proc.send_signal(signal.SIGSTOP)
    try:
        await held.join(room_id)  # its transaction goes to a guardbot that does not answer
        await asyncio.sleep(0.5)
        await lost.join(room_id)  # queued in the homeserver's memory behind the one in flight
        await asyncio.sleep(0.5)
        await restart()
    finally:
        bot.proc.send_signal(signal.SIGCONT)

    await wait_removed(owner, room_id, held.user_id, timeout=60)
    await wait_removed(owner, room_id, lost.user_id, timeout=60)
    return FrozenJoins(owner, room_id, first, held, lost)
