"""Every endpoint guardbot serves refuses a request without a token or with a wrong one,
except the few that are public on purpose, each listed here with the reason. The list of
endpoints comes from the application's own router, so a new endpoint fails this test until
someone decides which kind it is.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator
from urllib.parse import quote

import pytest

from tests.support.harness import Launch, Secrets
from tests.support.homeserver import Homeserver
from tests.support.inprocess import InProcessGuardbot, pwlu_settings
from tests.support.rawhttp import bearer, request

# Public on purpose. Anything else must refuse.
PUBLIC = {
    ("GET", "/_matrix/mau/live"): "health check for the container and load balancers",
    ("GET", "/_matrix/mau/ready"): "readiness check",
    ("POST", "/_guardbot/v1/pwlu/register"): "registration; its auth is the homeserver's own",
    ("GET", "/_guardbot/claim/{token}"): "the link's token is the credential",
    ("POST", "/_guardbot/claim/{token}"): "the link's token is the credential",
}
# What a wrong credential looks like for each kind of protected endpoint.
HS_TOKEN = re.compile(r"^/_matrix/app/v1/")
ANTISPAM_TOKEN = re.compile(r"^/_guardbot/antispam/")  # the door: the module's own token
USER_TOKEN = re.compile(r"^/_guardbot/v1/pwlu/(status|password)$")
SAMPLE = {
    "txn_id": "fuzz-auth-1",
    "user_id": "@1:localhost",
    "alias": "#a:localhost",
    "callback": "user_may_join_room",
}


@pytest.fixture(scope="module")
def gb(
    fault_hs: Homeserver, tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> Iterator[InProcessGuardbot]:
    workdir: pathlib.Path = tmp_path_factory.mktemp("auth")
    server = InProcessGuardbot(workdir, pwlu_settings(fault_hs, f"sqlite:{workdir / 'gb.db'}"))
    server.start()
    yield server
    server.stop()
    assert not secrets.found_in(server.log.text())


def endpoints(gb: InProcessGuardbot) -> list[tuple[str, str]]:
    found = []
    for route in gb.app.web.router.routes():
        info = route.resource.get_info() if route.resource else {}
        path = info.get("path") or info.get("formatter")
        if route.method in ("HEAD", "OPTIONS") or not path:
            continue  # HEAD mirrors GET; OPTIONS is the CORS preflight, answered to anyone
        found.append((route.method, path))
    return found


def concrete(path: str) -> str:
    def fill(m: re.Match[str]) -> str:
        return quote(SAMPLE.get(m.group(1), "x" * 43), safe="")

    return re.sub(r"\{(\w+)(:[^}]*)?\}", fill, path)


def wrong_credentials(real: str) -> list[list[tuple[bytes, bytes]]]:
    wrong = [bearer(b"wrong-" + real[:6].encode()), bearer(b""), [(b"Authorization", b"Basic abc")]]
    return [[], *wrong]


def refused(status: int, path: str) -> bool:
    if HS_TOKEN.match(path) or ANTISPAM_TOKEN.match(path):
        return status in (401, 403)
    if USER_TOKEN.match(path):
        return status == 401
    return False


def test_every_endpoint_refuses_a_missing_or_wrong_token(gb: InProcessGuardbot) -> None:
    routes = endpoints(gb)
    assert len(routes) >= 8, routes  # the router really was read
    hs_token = gb.config["appservice.hs_token"]
    for method, path in routes:
        if (method, path) in PUBLIC:
            continue
        assert HS_TOKEN.match(path) or USER_TOKEN.match(path) or ANTISPAM_TOKEN.match(path), (
            f"{method} {path} is neither public nor protected: decide, and list it here"
        )
        for headers in wrong_credentials(hs_token):
            url = concrete(path).encode()
            answer = request(gb.port, method.encode(), url, headers=headers, body=b"{}")
            assert refused(answer.status, path), (method, path, headers, answer.status)
        # The query-string token older homeservers send is checked the same way.
        url = concrete(path).encode() + b"?access_token=wrong"
        answer = request(gb.port, method.encode(), url, body=b"{}")
        assert refused(answer.status, path), (method, path, "query", answer.status)


def test_the_real_token_is_let_in(gb: InProcessGuardbot) -> None:
    """The refusals above are about the token, not a broken route."""
    token = gb.config["appservice.hs_token"].encode()
    ping = request(gb.port, b"POST", b"/_matrix/app/v1/ping", headers=bearer(token), body=b"{}")
    assert ping.status == 200
    path = b"/_matrix/app/v1/transactions/fuzz-auth-ok"
    txn = request(gb.port, b"PUT", path, headers=bearer(token), body=b'{"events": []}')
    assert txn.status == 200
    door = bearer(gb.config["antispam.token"].encode())
    ping = request(gb.port, b"POST", b"/_guardbot/antispam/ping", headers=door, body=b"{}")
    assert ping.status == 200


async def test_the_running_process_refuses_too(fault_hs: Homeserver, launch: Launch) -> None:
    """The same refusals from guardbot as deployed (its own process, its own listener)."""
    bot = await launch(
        fault_hs,
        **{
            k[9:]: v
            for k, v in pwlu_settings(fault_hs, "").items()
            if k.startswith("GUARDBOT_PWLU__")
        },
    )
    port = fault_hs.guardbot_port
    # Each side's token is wrong on the other side: the as_token is guardbot's towards the
    # homeserver, the hs_token the homeserver's towards guardbot, neither a user's.
    as_token, hs_token = fault_hs.as_token.encode(), fault_hs.hs_token.encode()
    for method, path, other in [
        (b"PUT", b"/_matrix/app/v1/transactions/live-1", as_token),
        (b"POST", b"/_matrix/app/v1/ping", as_token),
        (b"GET", b"/_matrix/app/v1/users/%401%3Alocalhost", as_token),
        (b"GET", b"/_matrix/app/v1/rooms/%23a%3Alocalhost", as_token),
        (b"GET", b"/_guardbot/v1/pwlu/status", hs_token),
        (b"POST", b"/_guardbot/v1/pwlu/password", hs_token),
        (b"POST", b"/_guardbot/antispam/user_may_join_room", hs_token),
    ]:
        for headers in ([], bearer(b"wrong"), bearer(other)):
            answer = request(port, method, path, headers=headers, body=b"{}")
            assert answer.status in (401, 403), (method, path, answer.status)
    assert bot.proc is not None and bot.proc.poll() is None
