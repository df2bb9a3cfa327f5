"""The reverse proxy in front of a Synapse with workers (devtools/synapse_workers.py): routes each
request as a real deployment's nginx would, after Synapse's docs/workers.md.

Run as its own process, so that it keeps answering whatever the test's event loop is doing:
    python devtools/worker_proxy.py --port P --log FILE main=URL client=URL appservice=URL
Only aiohttp is needed (no import of the repository), so it runs from any working directory.
A backend that is down gets nginx's answer: 502 with an HTML body, not a Matrix error.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO

import aiohttp
from aiohttp import web

_C = r"^/_matrix/client/(api/v1|r0|v3|unstable)"
_C3 = r"^/_matrix/client/(r0|v3|unstable)"

# (backend, methods or None for any, pattern); the first match wins, anything else goes to main.
# The client patterns are the generic_worker list of docs/workers.md, less registration and
# login (kept on main, like the account and directory-publication endpoints, which only main
# serves). GET of two admin endpoints is served by workers too (synapse/rest/admin).
ROUTES: list[tuple[str, frozenset[str] | None, re.Pattern[str]]] = [
    ("appservice", None, re.compile(r"^/_matrix/client/v1/appservice/[^/]+/ping$")),
    *(
        ("client", None, re.compile(p))
        for p in (
            r"^/_matrix/client/(r0|v3)/sync$",
            _C.replace("|unstable", "") + r"/(events|initialSync)$",
            _C.replace("|unstable", "") + r"/rooms/[^/]+/initialSync$",
            _C + r"/createRoom$",
            _C + r"/publicRooms$",
            _C + r"/rooms/.*/(joined_members|members|state|messages)$",
            _C + r"/rooms/.*/context/.*$",
            r"^/_matrix/client/v1/rooms/.*/(hierarchy|threads|timestamp_to_event)$",
            r"^/_matrix/client/(v1|unstable)/rooms/.*/relations/",
            _C3 + r"/account/(3pid|whoami|deactivate)$",
            _C3.replace("|unstable", "") + r"/delete_devices$",
            _C + r"/devices(/|$)",
            r"^/_matrix/client/versions$",
            _C + r"/voip/turnServer$",
            _C + r"/rooms/.*/event/",
            _C + r"/joined_rooms$",
            r"^/_matrix/client/(api/v1|r0|v3|unstable/.*)/rooms/.*/aliases",
            _C + r"/search$",
            _C3 + r"/user/.*/filter(/|$)",
            _C + r"/directory/room/.*$",
            _C3 + r"/(capabilities|notifications)$",
            _C3 + r"/keys/(query|changes|claim|upload)",
            _C3 + r"/room_keys/",
            _C + r"/keys/(device_signing|signatures)/upload$",
            _C + r"/rooms/.*/(redact|send)",
            _C + r"/rooms/.*/state/",
            _C + r"/rooms/.*/(join|invite|leave|ban|unban|kick)$",
            _C + r"/(join|knock)/",
            _C + r"/profile/",
            _C3 + r"/user_directory/search$",
        )
    ),
    ("client", frozenset({"GET"}), re.compile(r"^/_synapse/admin/v1/rooms/[^/]+$")),
    ("client", frozenset({"GET"}), re.compile(r"^/_synapse/admin/v2/users/[^/]+$")),
]

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp sets itself for the body it sends.
_DROP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "content-encoding",
    }
)
_BAD_GATEWAY = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"
)


def route(method: str, path: str) -> str:
    """The backend ("main", "client" or "appservice") that serves `method path`."""
    for backend, methods, pattern in ROUTES:
        if (methods is None or method in methods) and pattern.search(path):
            return backend
    return "main"


class Proxy:
    def __init__(self, backends: Mapping[str, str], log: IO[str]) -> None:
        self.backends = dict(backends)
        self.log = log
        self.session: aiohttp.ClientSession | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        assert self.session is not None
        backend = route(request.method, request.path)
        started = time.monotonic()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        headers["X-Forwarded-For"] = request.remote or "127.0.0.1"
        body = await request.read()
        try:
            async with self.session.request(
                request.method,
                self.backends[backend] + request.raw_path,
                data=body or None,
                headers=headers,
                allow_redirects=False,
            ) as upstream:
                payload = await upstream.read()
                status = upstream.status
                out_headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP}
        except (aiohttp.ClientError, OSError):
            payload, status = _BAD_GATEWAY, 502
            out_headers = {"Content-Type": "text/html"}
        ms = (time.monotonic() - started) * 1000
        stamp = time.strftime("%H:%M:%S") + f".{int(time.time() * 1000) % 1000:03d}"
        line = f"{stamp} {request.method} {request.path} -> {backend} {status} {ms:.0f}ms\n"
        self.log.write(line)
        self.log.flush()
        return web.Response(status=status, body=payload, headers=out_headers)


async def serve(port: int, backends: Mapping[str, str], log: IO[str]) -> None:
    proxy = Proxy(backends, log)
    # No total timeout: /sync long-polls; connect fails fast when a backend is down.
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=5)
    async with aiohttp.ClientSession(timeout=timeout, auto_decompress=False) as session:
        proxy.session = session
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.write(f"listening on 127.0.0.1:{port}: {dict(backends)}\n")
        log.flush()
        await stop.wait()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log", default="-", help="request log file ('-': stdout)")
    parser.add_argument("backends", nargs="+", help="NAME=URL for main, client and appservice")
    args = parser.parse_args(argv)
    backends = dict(b.split("=", 1) for b in args.backends)
    missing = {"main", "client", "appservice"} - set(backends)
    if missing:
        parser.error(f"no URL for {', '.join(sorted(missing))}")
    log = sys.stdout if args.log == "-" else open(args.log, "a", encoding="utf8")  # noqa: SIM115
    asyncio.run(serve(args.port, {k: v.rstrip("/") for k, v in backends.items()}, log))


if __name__ == "__main__":
    main()
