"""The doctor's stand-in listener (guardbot stopped, the homeserver's ping caught on guardbot's
port) against what a hostile or broken caller sends: Matrix error JSON or an answer, never a
500. Found in the fault suite's hostile run."""

from __future__ import annotations

import asyncio
import json

from guardbot.tools.doctor.ping import PingListener
from tests.support.homeserver import free_port
from tests.support.rawhttp import bearer, request

TOKEN = b"hs-token"
PING = b"/_matrix/app/v1/ping"


async def ask(port: int, **kw: object) -> tuple[int, dict]:
    answer = await asyncio.to_thread(request, port, b"POST", PING, **kw)
    return answer.status, json.loads(answer.body or b"{}")


async def test_a_token_that_is_not_utf8_is_a_wrong_token_not_an_error() -> None:
    listener, port = PingListener(TOKEN.decode(), "txn"), free_port()
    await listener.start("127.0.0.1", port)
    try:
        status, body = await ask(port, headers=bearer(b"hs-token\xff\xfe"), body=b"{}")
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")
        assert listener.token_matched is False
        assert (await ask(port, headers=bearer(TOKEN), body=b"{}"))[0] == 200
        assert listener.token_matched is True
    finally:
        await listener.close()


async def test_very_deep_json_is_no_body_not_an_error() -> None:
    listener, port = PingListener(TOKEN.decode(), "txn"), free_port()
    await listener.start("127.0.0.1", port)
    try:
        deep = b"[" * 200_000 + b"]" * 200_000
        headers = [*bearer(TOKEN), (b"Content-Type", b"application/json")]
        status, _ = await ask(port, headers=headers, body=deep)
        assert status == 200 and listener.token_matched is True
    finally:
        await listener.close()
