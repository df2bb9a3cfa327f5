"""The reverse proxy in front of an active/standby set of guardbot processes, as the README's
nginx example behaves (`proxy_next_upstream error timeout http_503 non_idempotent`): each
request goes to the process that answered last, and on a refused connection, a time-out or a
503 (a standby's answer) to the next one. No health checks of its own: a standby's 503 is
the signal.

Run as its own process, so that it keeps answering whatever the test's event loop is doing:
    python devtools/pair_proxy.py --port P [--timeout S] URL URL...
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from collections.abc import Sequence

import aiohttp
from aiohttp import web

# Hop-by-hop headers (RFC 9110 7.6.1) and those aiohttp sets itself for the body it sends.
_DROP = frozenset(
    {"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade", "host"}
    | {"content-length", "content-encoding"}
)


class PairProxy:
    def __init__(self, backends: Sequence[str], session: aiohttp.ClientSession) -> None:
        self.backends = list(backends)
        self.session = session
        self.last = 0  # the backend that answered last: the leader, most likely

    async def handle(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROP}
        body = await request.read()
        answer = web.Response(status=502, text="no guardbot answered")
        for n in range(len(self.backends)):
            i = (self.last + n) % len(self.backends)
            try:
                async with self.session.request(
                    request.method,
                    self.backends[i] + request.raw_path,
                    data=body or None,
                    headers=headers,
                    allow_redirects=False,
                ) as upstream:
                    kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _DROP}
                    answer = web.Response(
                        status=upstream.status, body=await upstream.read(), headers=kept
                    )
            except (aiohttp.ClientError, OSError, TimeoutError):
                continue
            if answer.status != 503:
                self.last = i
                return answer
        return answer


async def serve(port: int, backends: Sequence[str], timeout: float) -> None:
    client_timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=1)
    async with aiohttp.ClientSession(timeout=client_timeout, auto_decompress=False) as session:
        proxy = PairProxy(backends, session)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"listening on 127.0.0.1:{port}: {list(backends)}", flush=True)
        await stop.wait()
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=10.0, help="per backend, seconds")
    parser.add_argument("backends", nargs="+", help="each guardbot's URL")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.port, [b.rstrip("/") for b in args.backends], args.timeout))


if __name__ == "__main__":
    main()
