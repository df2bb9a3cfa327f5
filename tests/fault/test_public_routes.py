"""Strangers at the public routes, against guardbot as deployed and a Synapse that asks it at
the door: the named-guest API, the claim page and the door take small bodies only (refused
before they are read), so a crowd of 15 MB bodies neither stalls the door nor leaves rows;
tokens in URLs, guessed claim links and broken forms get their refusals, and answers name no
versions."""

from __future__ import annotations

import asyncio
import json
import pathlib
import socket
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from tests.support.harness import OPEN_REGISTRATION, Launch, Secrets, remember_secrets, rss_kib
from tests.support.homeserver import Homeserver, running_homeserver
from tests.support.matrix_client import MatrixError
from tests.support.pwlu_client import (
    Api,
    as_user,
    claim_token,
    dm_room,
    name_someone_elses_account,
    pwlu_env,
    query_db,
    unique,
    wait_for_nags,
)
from tests.support.rawhttp import bearer, request
from tests.support.rooms import listed_room

BIG = 15 * 1024 * 1024
REGISTER = b"/_guardbot/v1/pwlu/register"


@pytest_asyncio.fixture(scope="module")
async def door_hs(
    tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> AsyncIterator[Homeserver]:
    root: pathlib.Path = tmp_path_factory.mktemp("public-door-hs")
    async with running_homeserver(root, OPEN_REGISTRATION, door=True) as hs:
        remember_secrets(hs, secrets)
        yield hs


def big_body(port: int) -> tuple[int, float]:
    """A 15 MB body with its length stated: the status, and the seconds to the answer."""
    started = time.monotonic()
    body = b'{"username": "' + b"a" * BIG + b'"}'
    answer = request(port, b"POST", REGISTER, body=body, timeout=60)
    return answer.status, time.monotonic() - started


def chunked_body(port: int) -> int:
    """The same without a length (chunked): refused once reading passes the bound."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(
            b"POST /_guardbot/v1/pwlu/register HTTP/1.1\r\nHost: x\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        chunk = b"x" * 65536
        try:
            for _ in range(BIG // len(chunk)):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused half-way and closed: read the answer
        raw = b""
        try:
            while data := sock.recv(65536):
                raw += data
        except ConnectionResetError:
            pass
    return int(raw.split(b" ")[1]) if raw.startswith(b"HTTP/1.") else 0


async def test_big_bodies_are_refused_at_once_and_the_door_still_answers(
    door_hs: Homeserver, launch: Launch
) -> None:
    hs = door_hs
    bot = await launch(hs, **pwlu_env(hs))
    assert bot.proc is not None
    port = hs.guardbot_port
    owner = await hs.user(unique("owner"))
    room_id = await listed_room(hs, owner)
    before = rss_kib(bot.proc.pid)

    crowd = [asyncio.to_thread(big_body, port) for _ in range(6)]
    crowd += [asyncio.to_thread(chunked_body, port) for _ in range(2)]
    running = asyncio.gather(*crowd)
    await asyncio.sleep(0.2)  # the bodies are on their way
    guests_refused = 0
    for _ in range(3):
        guest = await hs.guest()
        with pytest.raises(MatrixError) as refused:
            await guest.join(room_id)  # the door answers in time: guardbot's own words
        assert refused.value.status == 403 and "Guests can't join" in refused.value.body["error"]
        guests_refused += 1
    answers = await running
    assert [a[0] for a in answers[:6]] == [413] * 6, answers
    assert answers[6:] == [413, 413], answers
    print(f"15 MB bodies answered in {max(a[1] for a in answers[:6]):.2f}s at most")
    assert guests_refused == 3
    assert rss_kib(bot.proc.pid) - before < 64 * 1024  # nothing 15 MB was kept
    assert query_db(bot, "SELECT user_id FROM pwlu") == []


async def test_tokens_in_urls_guessed_links_and_broken_forms(
    door_hs: Homeserver, launch: Launch
) -> None:
    hs = door_hs
    limits = {"PWLU__RATE_LIMIT__BURST_COUNT": "6", "PWLU__RATE_LIMIT__PER_SECOND": "0.001"}
    bot = await launch(hs, **pwlu_env(hs, PWLU__NAG__EVERY="1h", **limits))
    port = hs.guardbot_port
    named = await Api(bot.url).register_pwlu(unique("tokens"))
    token = named["access_token"]

    # A user's token in the query string is not a credential here (proxy logs keep URLs).
    status = f"/_guardbot/v1/pwlu/status?access_token={token}".encode()
    assert request(port, b"GET", status).status == 401
    own = bearer(token.encode())
    assert request(port, b"GET", status[: status.index(b"?")], headers=own).status == 200
    ping = f"/_guardbot/antispam/ping?access_token={hs.antispam_token}".encode()
    assert request(port, b"POST", ping, body=b'{"id": "q"}').status == 401
    # The appservice routes still take it: older homeservers send it that way.
    txn = f"/_matrix/app/v1/transactions/q-1?access_token={hs.hs_token}".encode()
    assert request(port, b"PUT", txn, body=b'{"events": []}').status == 200

    # Wrong tokens cost a look-up each: they are charged to the client's bucket (6 here: the
    # registration's two steps and the token in the URL above spent three).
    wrong = [request(port, b"GET", b"/_guardbot/v1/pwlu/status", headers=bearer(b"nope"))]
    wrong += [request(port, b"GET", b"/_guardbot/v1/pwlu/status", headers=bearer(b"nope"))]
    wrong += [request(port, b"GET", b"/_guardbot/v1/pwlu/status", headers=bearer(b"nope"))]
    limited = request(port, b"GET", b"/_guardbot/v1/pwlu/status", headers=bearer(b"nope"))
    assert [a.status for a in wrong] == [401, 401, 401] and limited.status == 429
    assert json.loads(limited.body)["errcode"] == "M_LIMIT_EXCEEDED"

    # Guessing claim links is charged to the guesser; a real link still opens for anyone,
    # and a broken form on it is a 400, not an error of guardbot's.
    user = as_user(hs, named)
    room = await dm_room(user, hs.bot_user_id, timeout=60)
    (nag,) = await wait_for_nags(user, room, hs.bot_user_id, 1, timeout=60)
    link = f"/_guardbot/claim/{claim_token(nag)}".encode()
    guesses = [request(port, b"GET", b"/_guardbot/claim/" + b"A" * 43) for _ in range(7)]
    assert [a.status for a in guesses] == [404] * 6 + [429]
    assert request(port, b"GET", link).status == 200
    broken = [(b"Content-Type", b"multipart/form-data; boundary=x")]
    answer = request(port, b"POST", link, headers=broken, body=b"--x\r\nnot a part")
    assert answer.status == 400 and b"could not be read" in answer.body
    assert "Claim page submission failed" not in bot.log()

    # Answers name no versions.
    live = request(port, b"GET", b"/_matrix/mau/live")
    assert live.headers["server"] == "guardbot"


async def test_naming_someone_elses_account_leaves_nothing_to_settle(
    door_hs: Homeserver, launch: Launch
) -> None:
    """The attack of issue 16: a stranger names an existing account at the named-guest API,
    first steps and steps with auth, many times. Nothing is stored that guardbot would later
    settle by trying a password on that account."""
    hs = door_hs
    bot = await launch(hs, **pwlu_env(hs))
    api = Api(bot.url)
    someone = await hs.user(unique("someone"))
    name = someone.user_id[1:].split(":")[0]
    await name_someone_elses_account(api, name, rounds=5)
    assert query_db(bot, "SELECT user_id FROM pwlu") == []
