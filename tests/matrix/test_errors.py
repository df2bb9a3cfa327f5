"""What guardbot serves over HTTP (guardbot/matrix/errors.py): Matrix error JSON for every
error, no internals in a 500, a bound on public bodies, and a Server header without versions."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from guardbot.matrix.errors import body_limit, error_middleware, plain_server_header


async def broken(_: web.Request) -> web.Response:
    raise RuntimeError("secret internals")


async def echo(request: web.Request) -> web.Response:
    return web.json_response({"read": len(await request.read())})


@pytest.fixture
async def client() -> AsyncIterator[TestClient]:
    app = web.Application(middlewares=[error_middleware, body_limit(("/public",), 100)])
    app.router.add_get("/broken", broken)
    app.router.add_post("/public/echo", echo)
    app.router.add_post("/private/echo", echo)
    app.on_response_prepare.append(plain_server_header)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client
    await client.close()


async def test_errors_are_matrix_json_and_a_crash_tells_nothing(client: TestClient) -> None:
    missing = await client.get("/nowhere")
    assert missing.status == 404 and (await missing.json())["errcode"] == "M_UNRECOGNIZED"
    wrong = await client.put("/broken")
    assert wrong.status == 405 and (await wrong.json())["errcode"] == "M_UNRECOGNIZED"
    crash = await client.get("/broken")
    assert crash.status == 500
    assert await crash.json() == {"errcode": "M_UNKNOWN", "error": "Internal error"}
    assert crash.headers["Server"] == "guardbot"


async def test_public_bodies_are_bounded_and_the_rest_are_not(client: TestClient) -> None:
    assert (await (await client.post("/public/echo", data=b"x" * 100)).json()) == {"read": 100}
    too_big = await client.post("/public/echo", data=b"x" * 101)
    assert too_big.status == 413 and (await too_big.json())["errcode"] == "M_TOO_LARGE"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: refused while reading
        for _ in range(10):
            yield b"x" * 50

    chunked = await client.post("/public/echo", data=chunks())
    assert chunked.status == 413 and (await chunked.json())["errcode"] == "M_TOO_LARGE"
    private = await client.post("/private/echo", data=b"x" * 1000)
    assert (await private.json()) == {"read": 1000}
