"""Matrix error JSON for everything guardbot serves over HTTP, and what every answer carries
(a bound on public bodies, a Server header that names no versions)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_BY_STATUS = {
    400: "M_BAD_JSON",
    401: "M_MISSING_TOKEN",
    403: "M_FORBIDDEN",
    404: "M_UNRECOGNIZED",
    405: "M_UNRECOGNIZED",
    413: "M_TOO_LARGE",
}


def matrix_error(status: int, errcode: str, error: str, **extra: object) -> web.Response:
    return web.json_response({"errcode": errcode, "error": error, **extra}, status=status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own errors (404, 405, 413...) are plain text; homeservers and clients expect
    {"errcode", "error"}. Anything unexpected becomes a 500 without internals."""
    try:
        return await handler(request)
    except web.HTTPException as e:
        if e.status < 400 or e.content_type == "application/json":
            raise
        errcode = _BY_STATUS.get(e.status, "M_UNKNOWN")
        return matrix_error(e.status, errcode, e.reason)
    except Exception:
        log.exception("Unhandled error serving %s %s", request.method, request.path)
        return matrix_error(500, "M_UNKNOWN", "Internal error")


def body_limit(
    prefixes: tuple[str, ...], max_size: int
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Requests under `prefixes` (the routes strangers reach, and the door) carry small bodies:
    a bigger one is refused before it is read (a stated Content-Length), or as soon as
    reading passes the bound (a chunked one), so it never costs parsing time the door's
    answers wait behind. The app-wide limit stays for the homeserver's transactions."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(prefixes) and request.method not in ("GET", "HEAD", "OPTIONS"):
            length = request.content_length
            if length is not None and length > max_size:
                refused = matrix_error(
                    413, "M_TOO_LARGE", f"Request bodies here are at most {max_size} bytes"
                )
                refused.force_close()  # the body is never read
                return refused
            request = request.clone(client_max_size=max_size)
        return await handler(request)

    return limit


async def plain_server_header(_: web.Request, response: web.StreamResponse) -> None:
    """aiohttp's default names its and Python's versions: nothing a stranger needs."""
    response.headers["Server"] = "guardbot"
