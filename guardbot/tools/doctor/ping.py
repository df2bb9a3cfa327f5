"""The doctor's appservice ping, both ways: guardbot → homeserver → appservice.address.

The homeserver answers `POST /_matrix/client/v1/appservice/{id}/ping` by calling
`POST /_matrix/app/v1/ping` on the registration's URL with its hs_token. When guardbot is not
running, the doctor listens on appservice.hostname:port itself for a moment, so it sees whether
the call arrives and which hs_token it carries; that is the only place a wrong hs_token shows.
When guardbot is running there, the ping goes through it, and its answer is the check.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import secrets

import aiohttp
from aiohttp import web

from guardbot.config import Config
from guardbot.guard.intake import bearer_token
from guardbot.matrix.client import Homeserver, HomeserverError, q
from guardbot.matrix.errors import error_middleware
from guardbot.tools.doctor.report import Report

NAME = "ping"


class PingListener:
    """Stands in for guardbot on its port: answers pings, refuses everything else."""

    def __init__(self, hs_token: str, txn_id: str) -> None:
        self._hs_token = hs_token.encode()
        self.txn_id = txn_id
        self.token_matched: bool | None = None  # None: our ping never arrived
        self.runner: web.AppRunner | None = None

    async def start(self, host: str, port: int) -> None:
        app = web.Application(middlewares=[error_middleware])
        app.router.add_post("/_matrix/app/v1/ping", self.ping)
        # Transactions must fail: accepting one here would lose its events for guardbot. A
        # non-2xx answer makes the homeserver keep them and retry later.
        app.router.add_route("*", "/{tail:.*}", self.refuse)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        try:
            await web.TCPSite(self.runner, host, port).start()
        except OSError:
            await self.close()
            raise

    async def close(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def ping(self, request: web.Request) -> web.Response:
        # Very deep JSON (RecursionError) counts as no body, like any that is not JSON.
        with contextlib.suppress(ValueError, RecursionError, aiohttp.ContentTypeError):
            body = await request.json()
            txn_id = body.get("transaction_id") if isinstance(body, dict) else None
            if txn_id is not None and txn_id != self.txn_id:
                return await self.refuse(request)  # someone else's ping
        token = bearer_token(request, query=True) or ""
        # surrogateescape: header bytes that are not UTF-8 arrive as lone surrogates.
        presented = token.encode("utf-8", "surrogateescape")
        self.token_matched = hmac.compare_digest(presented, self._hs_token)
        if self.token_matched:
            return web.json_response({})
        return web.json_response({"errcode": "M_FORBIDDEN", "error": "Wrong hs_token"}, status=403)

    async def refuse(self, _: web.Request) -> web.Response:
        error = {"errcode": "M_UNAVAILABLE", "error": "guardbot doctor is checking; not running"}
        return web.json_response(error, status=503)


async def _guardbot_is_live(host: str, port: int) -> bool:
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    url = f"http://{host}:{port}/_matrix/mau/live"
    if ":" in host:
        url = f"http://[{host}]:{port}/_matrix/mau/live"
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as s, s.get(url) as resp:
            return resp.status == 200
    except (aiohttp.ClientError, TimeoutError, OSError):
        return False


async def _ping(hs: Homeserver, appservice_id: str, txn_id: str) -> HomeserverError | None:
    path = f"/_matrix/client/v1/appservice/{q(appservice_id)}/ping"
    try:
        await hs.request("POST", path, {"transaction_id": txn_id})
    except HomeserverError as e:
        return e
    return None


def _unsupported(e: HomeserverError | None) -> bool:
    return e is not None and (e.errcode == "M_UNRECOGNIZED" or e.status in (404, 405))


def _homeserver_gone(e: HomeserverError | None, report: Report) -> bool:
    if e is None or e.status != 0:
        return False
    report.fail(NAME, f"the homeserver did not answer ({e.error})", "check homeserver.address")
    return True


async def check_ping(config: Config, hs: Homeserver, report: Report, regen: str) -> None:
    host, port = config["appservice.hostname"], config["appservice.port"]
    address = config["appservice.address"]
    txn_id = "guardbot-doctor-" + secrets.token_hex(8)
    listener = PingListener(config["appservice.hs_token"], txn_id)
    try:
        await listener.start(host, port)
    except OSError as e:
        if e.errno != errno.EADDRINUSE:
            report.fail(
                NAME,
                f"cannot listen on {host}:{port} ({e.strerror})",
                "set appservice.hostname/appservice.port to an address this machine may listen on",
            )
            return
        await _through_running_guardbot(config, hs, report, txn_id, regen)
        return
    try:
        error = await _ping(hs, config["appservice.id"], txn_id)
        await asyncio.sleep(0)  # let the listener finish recording a ping that just arrived
    finally:
        await listener.close()
    where = f"guardbot is not running; doctor listened on {host}:{port} in its place"
    if _homeserver_gone(error, report):
        return
    if _unsupported(error):
        report.skip(NAME, "the homeserver does not support appservice ping (Matrix 1.7)")
    elif listener.token_matched:
        report.ok(NAME, f"the homeserver reached {address} with the right hs_token ({where})")
    elif listener.token_matched is False:
        report.fail(
            NAME,
            "the homeserver called with an hs_token that is not appservice.hs_token"
            f" ({where}): it loaded a registration with other tokens",
            regen,
        )
    elif error is None or error.errcode == "M_BAD_STATUS":
        report.fail(
            NAME,
            "the homeserver's ping to the registration's URL reached something other than"
            f" this doctor on {host}:{port} (a guardbot running elsewhere?)",
            "make appservice.address the URL at which the homeserver reaches appservice.hostname"
            f":port, then {regen}",
        )
    else:
        report.fail(
            NAME,
            f"the homeserver cannot reach guardbot ({where}): {error.error}",
            "make appservice.address a URL at which the homeserver reaches"
            f" {host}:{port} (firewall, container network, hostname), then {regen}",
        )


async def _through_running_guardbot(
    config: Config, hs: Homeserver, report: Report, txn_id: str, regen: str
) -> None:
    host, port = config["appservice.hostname"], config["appservice.port"]
    if not await _guardbot_is_live(host, port):
        report.fail(
            NAME,
            f"{host}:{port} is taken by a program that is not guardbot",
            "stop it, or choose another appservice.port (and appservice.address), then " + regen,
        )
        return
    error = await _ping(hs, config["appservice.id"], txn_id)
    if _homeserver_gone(error, report):
        return
    if error is None:
        report.ok(
            NAME,
            f"the homeserver reached the running guardbot on {host}:{port}, which accepted"
            " its hs_token",
        )
    elif _unsupported(error):
        report.skip(NAME, "the homeserver does not support appservice ping (Matrix 1.7)")
    elif error.errcode == "M_BAD_STATUS" and error.body.get("status") in (401, 403):
        report.fail(
            NAME,
            f"the running guardbot on {host}:{port} refused the homeserver's hs_token",
            f"give guardbot the hs_token of the registration the homeserver loaded: {regen},"
            " then restart guardbot",
        )
    else:
        report.fail(
            NAME,
            f"guardbot runs on {host}:{port} but the homeserver's ping failed: {error.error}",
            "make appservice.address a URL at which the homeserver reaches"
            f" {host}:{port}, then {regen}",
        )
