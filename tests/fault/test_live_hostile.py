"""Hostile input against guardbot as deployed (its own process, the real Synapse): a smaller
hypothesis run over every endpoint, bursts of the largest bodies it accepts, the deepest JSON
the homeserver itself will pass on, and a policy event from a room guardbot cannot see.
Afterwards the process is alive, its memory has not kept growing, it still removes a guest who
joins a listed room, and its log holds none of the tokens and passwords thrown at it.
"""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import quote

import aiohttp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import assert_relayed, bodies, broken_events, claim_tokens, header_bytes
from tests.support.harness import (
    SCALE,
    Launch,
    MakeDatabase,
    Secrets,
    backends,
    remember_secrets,
    rss_kib,
)
from tests.support.homeserver import GuardbotProcess, Homeserver
from tests.support.matrix_client import User
from tests.support.pwlu_client import Api, pwlu_env
from tests.support.rawhttp import NO_ANSWER, bearer, request
from tests.support.rooms import listed_room, wait_removed
from tests.support.storm import unique

GROWTH_KIB = 64 * 1024  # what three more rounds of the biggest bodies may add, at most


def heavy_round(bot: GuardbotProcess, hs_token: bytes) -> None:
    """The biggest bodies guardbot accepts, the deepest JSON, and one over the limit."""
    port = int(bot.url.rsplit(":", 1)[1])
    txn = b"/_matrix/app/v1/transactions/"
    limit = 16 * 1024 * 1024
    junk = b'{"events": [' + b"0," * (limit // 2 - 16) + b"0]}"
    deep = b"[" * 200_000 + b"]" * 200_000
    for name, body, expected in (
        (b"junk", junk, 200),
        (b"deep", deep, 400),
        (b"over", b" " * (limit + 1), 413),
    ):
        path = txn + name + str(time.monotonic_ns()).encode()
        answer = request(port, b"PUT", path, headers=bearer(hs_token), body=body, timeout=60)
        assert answer.status == expected, (name, answer.status, answer.body[:200])


@st.composite
def hostile_requests(draw: st.DrawFn, hs_token: bytes, user_token: bytes) -> tuple:
    which = draw(st.sampled_from(["txn", "register", "status", "password", "claim"]))
    token = draw(st.one_of(header_bytes, st.just(user_token + b"\x01"), st.just(user_token)))
    if which == "txn":
        events = draw(st.lists(broken_events(), max_size=6))
        path = b"/_matrix/app/v1/transactions/live-" + str(draw(st.integers(0, 50))).encode()
        return b"PUT", path, bearer(hs_token), json.dumps({"events": events}).encode()
    if which == "claim":
        path = ("/_guardbot/claim/" + quote(draw(claim_tokens), safe="")).encode()
        return draw(st.sampled_from([b"GET", b"POST"])), path, [], draw(bodies)
    method = b"GET" if which == "status" else b"POST"
    return method, f"/_guardbot/v1/pwlu/{which}".encode(), bearer(token), draw(bodies)


async def deepest_accepted(user: User, room_id: str) -> int:
    """The most deeply nested message content this homeserver takes (its JSON parser has a
    recursion limit); guardbot will get that event inside a transaction, three levels deeper.
    Sent as raw text: encoding it would hit this process's own recursion limit."""
    base = f"{user.base_url}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/m.room.message"
    low, high = 1, 5000
    async with aiohttp.ClientSession() as session:
        while low < high:  # the largest depth accepted, by bisection (~12 requests)
            mid = (low + high + 1) // 2
            body = '{"msgtype": "m.text", "body": "deep", "nest": ' + "[" * mid + "]" * mid + "}"
            async with session.put(
                f"{base}/deep-{mid}-{time.monotonic_ns()}",
                data=body.encode(),
                headers={"Authorization": f"Bearer {user.token}"},
            ) as resp:
                low, high = (mid, high) if resp.status == 200 else (low, mid - 1)
    return low


async def test_hostile_traffic_leaves_the_process_working_and_bounded(
    fault_hs: Homeserver, launch: Launch, make_database: MakeDatabase, secrets: Secrets
) -> None:
    hs = fault_hs
    bot = await launch(hs, await make_database(backends()[0]), **pwlu_env(hs))
    assert bot.proc is not None
    keyring = remember_secrets(hs, secrets)
    named = await Api(bot.url).register_pwlu(unique("hostile"))
    secrets.add(named["access_token"], keyring.password(named["user_id"]))
    hs_token, user_token = hs.hs_token.encode(), named["access_token"].encode()

    await asyncio.to_thread(heavy_round, bot, hs_token)
    await asyncio.sleep(1)
    before = rss_kib(bot.proc.pid)
    port = hs.guardbot_port
    answers: list[int] = []

    @settings(
        max_examples=SCALE.live_fuzz_examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(req=hostile_requests(hs_token, user_token))
    def hammer(req: tuple) -> None:
        method, path, headers, body = req
        answer = request(port, method, path, headers=headers, body=body)
        assert answer.status != NO_ANSWER, (method, path)
        if answer.status >= 500:
            assert_relayed(hs.synapse.port, answer, headers, body)
        answers.append(answer.status)

    # A real token with a byte no header may carry: the HTTP parser refuses the request, and
    # must not write the header (token and all) to the log while it is at it.
    garbled = request(
        port, b"GET", b"/_guardbot/v1/pwlu/status", headers=bearer(user_token + b"\x01")
    )
    assert garbled.status == 400
    started = time.monotonic()
    await asyncio.to_thread(hammer)
    for _ in range(3):
        await asyncio.to_thread(heavy_round, bot, hs_token)
    await asyncio.sleep(1)
    after = rss_kib(bot.proc.pid)
    print(
        f"{len(answers)} hostile requests + 4 heavy rounds in {time.monotonic() - started:.0f}s;"
        f" RSS {before // 1024} -> {after // 1024} MiB"
    )
    assert bot.proc.poll() is None, "guardbot died"
    assert after - before < GROWTH_KIB, f"RSS grew {(after - before) // 1024} MiB"

    # Real traffic still flows, the deepest content the homeserver passes on included.
    owner = await hs.user(unique("owner"))
    chat = await owner.create_room(listed=False)
    sitting = await hs.guest()
    await sitting.join(chat)  # a guest in the room: all its events reach guardbot
    depth = await deepest_accepted(owner, chat)
    # Anyone may set guardbot's policy event or type a command in their own room: guardbot,
    # not in it, cannot judge them (it once held up every later event for ever trying).
    await owner.set_state(chat, "dev.guardbot.policy", {"listed_rooms": "off"})
    await owner.send_text(chat, "!guardbot status")  # the same for a command there
    room_id = await listed_room(hs, owner)
    guest = await hs.guest()
    await guest.join(room_id)
    await wait_removed(owner, room_id, guest.user_id, timeout=30)
    print(f"deepest content the homeserver passed on: {depth} levels")
