"""A proxy between guardbot and its homeserver that holds one chosen request, so a test can
kill guardbot in the middle of that call: after the homeserver did it (`deliver`), or before
it reached the homeserver. Everything else passes through, as does everything once it held
its one request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import aiohttp
from aiohttp import web

# Hop-by-hop and framing headers are the proxy's own business.
_DROPPED = {"host", "content-length", "transfer-encoding", "connection"}


class HoldingProxy:
    def __init__(
        self, target: str, matches: Callable[[web.Request, bytes], bool], deliver: bool
    ) -> None:
        self.target = target.rstrip("/")
        self.matches = matches
        self.deliver = deliver
        self.held = asyncio.Event()  # the chosen request arrived (and, if `deliver`, was done)
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(client_max_size=1 << 24)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        self._release.set()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _pass(self, request: web.Request, body: bytes) -> web.Response:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED}
        async with self._session.request(
            request.method, self.target + request.path_qs, data=body, headers=headers
        ) as resp:
            return web.Response(
                status=resp.status,
                body=await resp.read(),
                content_type=resp.content_type,
            )

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.held.is_set() or not self.matches(request, body):
            return await self._pass(request, body)
        if self.deliver:
            await self._pass(request, body)  # done at the homeserver; the answer never comes
        self.held.set()
        await self._release.wait()  # until the test ends: the caller is killed meanwhile
        raise web.HTTPServiceUnavailable()


class ChaosProxy(HoldingProxy):
    """The same proxy, for a nemesis: it passes everything, answers 503 while `mode` is
    "fail", and holds each request `delay` seconds first while it is "slow"."""

    def __init__(self, target: str, delay: float = 3.0) -> None:
        super().__init__(target, lambda request, body: False, deliver=False)
        self.mode = "pass"
        self.delay = delay

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        if self.mode == "fail":
            body_json = {"errcode": "M_UNKNOWN", "error": "injected by the soak's nemesis"}
            return web.json_response(body_json, status=503)
        if self.mode == "slow":
            await asyncio.sleep(self.delay)
        try:
            return await self._pass(request, body)
        except (aiohttp.ClientError, OSError):  # the homeserver is down (restarting, say)
            body_json = {"errcode": "M_UNKNOWN", "error": "the homeserver did not answer"}
            return web.json_response(body_json, status=502)
