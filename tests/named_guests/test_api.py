"""The named guests' HTTP API (named_guests/api.py), as a client calls it: register (the
homeserver's own flows passed through), status and password by the user's own token, Matrix
error JSON for every refusal, CORS for web clients, and a per-client rate limit. Served as
guardbot serves it, against the scripted homeserver, on every supported database."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from devtools.named_guest_loop import NamedGuestLoop
from tests.support.fake_homeserver import FakeHomeserver

API = "/_guardbot/v1/pwlu"
USER = "@newcomer:example.org"
NEW = "a long and fine passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_named_guest_registers_then_asks_its_status_and_sets_a_password(
    named: NamedGuestLoop, fake_hs: FakeHomeserver, served: TestClient
) -> None:
    first = await served.post(f"{API}/register", json={"username": "newcomer"})
    assert first.status == 401 and "flows" in await first.json()
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    auth = {"type": "m.login.dummy", "session": "s"}
    done = await served.post(f"{API}/register", json={"username": "newcomer", "auth": auth})
    registered = await done.json()
    assert done.status == 200 and registered["user_id"] == USER
    token = registered["access_token"]

    status = await served.get(f"{API}/status", headers=bearer(token))
    body = await status.json()
    assert status.status == 200 and (body["pwlu"], body["password_set"]) == (True, False)
    changed = await served.post(
        f"{API}/password", json={"new_password": NEW}, headers=bearer(token)
    )
    assert changed.status == 200 and await changed.json() == {}
    assert fake_hs.users[USER]["password"] == NEW
    again = await (await served.get(f"{API}/status", headers=bearer(token))).json()
    assert again["password_set"] is True


async def test_refusals_are_matrix_errors(
    named: NamedGuestLoop, fake_hs: FakeHomeserver, served: TestClient
) -> None:
    async def refused(method: str, path: str, **kw: object) -> tuple[int, str]:
        resp = await served.request(method, f"{API}/{path}", **kw)  # type: ignore[arg-type]
        return resp.status, (await resp.json())["errcode"]

    assert await refused("POST", "register", data=b"{") == (400, "M_NOT_JSON")
    assert await refused("POST", "register", json={"username": ""}) == (400, "M_BAD_JSON")
    with_password = {"username": "x", "password": "mine"}
    assert await refused("POST", "register", json=with_password) == (400, "M_INVALID_PARAM")
    assert await refused("GET", "status") == (401, "M_MISSING_TOKEN")
    assert await refused("GET", "status", headers=bearer("made-up")) == (401, "M_UNKNOWN_TOKEN")
    fake_hs.user("@7:example.org", guest=True)
    guest = fake_hs.login_token("@7:example.org")
    password = {"new_password": NEW}
    assert await refused("POST", "password", json=password, headers=bearer(guest)) == (
        403,
        "M_GUEST_ACCESS_FORBIDDEN",
    )
    assert fake_hs.called("register") == []  # nothing malformed reached the homeserver


async def test_a_web_clients_preflight_is_answered(served: TestClient) -> None:
    resp = await served.options(f"{API}/register")
    assert resp.status == 204
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]


async def test_one_client_registering_too_often_is_told_to_wait(
    named: NamedGuestLoop, served: TestClient
) -> None:
    answers = [
        (await served.post(f"{API}/register", json={"username": f"u{n}"})).status
        for n in range(11)  # the example config's burst is 10
    ]
    assert answers[:10] == [401] * 10
    assert answers[10] == 429
    limited = await served.post(f"{API}/register", json={"username": "late"})
    assert (await limited.json())["errcode"] == "M_LIMIT_EXCEEDED"
    assert int(limited.headers["Retry-After"]) >= 1
