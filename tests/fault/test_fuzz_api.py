"""Hostile input on guardbot's own HTTP API (/_guardbot/v1/pwlu/...) and the claim page,
property-based, against the real application in-process, talking to the fault suite's real
Synapse. Whatever a client sends: an answer, never a 5xx (the homeserver is up here, so the
502 for an unreachable one is never intended), and nothing a client sent in its log.
"""

from __future__ import annotations

import json
import pathlib
import string
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from yarl import URL

from guardbot.core.clock import Clock
from guardbot.named_guests.claim import COOKIE
from guardbot.named_guests.tokens import new_claim_token
from tests.support.fuzz import (
    assert_relayed,
    awkward_text,
    bodies,
    claim_tokens,
    header_bytes,
    json_values,
)
from tests.support.harness import SCALE, Secrets
from tests.support.homeserver import Homeserver
from tests.support.inprocess import InProcessGuardbot, pwlu_settings
from tests.support.rawhttp import NO_ANSWER, Answer, request
from tests.support.storm import unique

PWLU = "/_guardbot/v1/pwlu"
FUZZ = settings(
    max_examples=max(20, SCALE.fuzz_examples // 3),  # each one may reach the homeserver
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    database=None,
)


class Named:
    """A named guest made through the API under test, and a claim link for it."""

    def __init__(self, gb: InProcessGuardbot, secrets: Secrets) -> None:
        username = unique("fuzzed")
        status, body = call(gb, b"POST", f"{PWLU}/register", {"username": username})
        if status == 401:  # the homeserver's dummy stage, as a client completes it
            auth = {"type": "m.login.dummy", "session": body["session"]}
            status, body = call(
                gb, b"POST", f"{PWLU}/register", {"username": username, "auth": auth}
            )
        assert status == 200, body
        self.user_id: str = body["user_id"]
        self.token: str = body["access_token"]
        self.claim, token_hash = new_claim_token()
        store = gb.app.named_guests.store  # type: ignore[union-attr]
        gb.run(
            store.add_claim(
                self.user_id, token_hash, Clock().now_ms(), Clock().now_ms() + 3_600_000
            )
        )
        secrets.add(self.token, self.claim, gb.app.named_guests.keys.password(self.user_id))  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def gb(
    fault_hs: Homeserver, tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> Iterator[InProcessGuardbot]:
    workdir: pathlib.Path = tmp_path_factory.mktemp("fuzz-api")
    server = InProcessGuardbot(workdir, pwlu_settings(fault_hs, f"sqlite:{workdir / 'gb.db'}"))
    server.start()
    yield server
    server.stop()
    assert not secrets.found_in(server.log.text()), secrets.found_in(server.log.text())


@pytest.fixture
def named(gb: InProcessGuardbot, secrets: Secrets) -> Named:
    """One per test: a password set by one test ends the account's claim links."""
    return Named(gb, secrets)


def send(
    gb: InProcessGuardbot,
    method: bytes,
    path: str | bytes,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Answer:
    raw_path = path.encode() if isinstance(path, str) else path
    answer = request(gb.port, method, raw_path, headers=headers or [], body=body)
    assert answer.status != NO_ANSWER, "connection dropped without an answer"
    if answer.status >= 500:
        assert_relayed(int(URL(gb.config["homeserver.address"]).port or 0), answer, headers, body)
    return answer


def call(gb: InProcessGuardbot, method: bytes, path: str, body: Any) -> tuple[int, Any]:
    answer = send(gb, method, path, json.dumps(body).encode())
    return answer.status, json.loads(answer.body)


def auth(token: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", b"Bearer " + token)]


# -- properties -------------------------------------------------------------------------------
@FUZZ
@given(body=bodies, token=st.one_of(st.none(), header_bytes))
def test_register(gb: InProcessGuardbot, body: bytes, token: bytes | None) -> None:
    send(gb, b"POST", f"{PWLU}/register", body, auth(token) if token is not None else [])


@example(token=b":", body=b"", which="status")  # Synapse itself answers 500
@FUZZ
@given(
    token=st.one_of(st.none(), header_bytes),
    body=bodies,
    which=st.sampled_from(["status", "password"]),
)
def test_status_and_password_without_a_real_token(
    gb: InProcessGuardbot, token: bytes | None, body: bytes, which: str
) -> None:
    method = b"GET" if which == "status" else b"POST"
    answer = send(gb, method, f"{PWLU}/{which}", body, auth(token) if token is not None else [])
    # 400: header bytes the HTTP parser refuses; 5xx: the homeserver's own, relayed (see send)
    assert answer.status in (400, 401, 403) or answer.status >= 500, answer.status


@FUZZ
@given(new=st.one_of(awkward_text, json_values, st.none()), extra=json_values)
def test_password_with_a_real_token(
    gb: InProcessGuardbot, named: Named, new: Any, extra: Any
) -> None:
    body = {"new_password": new, "extra": extra} if new is not None else {"extra": extra}
    answer = send(
        gb, b"POST", f"{PWLU}/password", json.dumps(body).encode(), auth(named.token.encode())
    )
    if not isinstance(new, str) or not new or len(new) > 512:
        assert answer.status == 400, (answer.status, answer.body[:200])


@FUZZ
@given(token=claim_tokens, method=st.sampled_from([b"GET", b"POST"]), body=bodies)
def test_claim_page_with_any_link(
    gb: InProcessGuardbot, token: str, method: bytes, body: bytes
) -> None:
    path = "/_guardbot/claim/" + quote(token, safe="")
    form = [(b"Content-Type", b"application/x-www-form-urlencoded")]
    answer = send(gb, method, path, body, form)
    assert answer.status in (404, 405) or token.startswith("/"), answer.status


@FUZZ
@given(
    csrf=st.one_of(awkward_text, st.text(string.hexdigits, min_size=64, max_size=64)),
    nonce=st.one_of(st.none(), header_bytes),
    new=awkward_text,
    again=st.one_of(awkward_text, st.just("")),
)
def test_claim_form_with_a_real_link(
    gb: InProcessGuardbot, named: Named, csrf: str, nonce: bytes | None, new: str, again: str
) -> None:
    """Forged or garbled CSRF fields, cookies and passwords on a real link: refused cleanly."""
    path = "/_guardbot/claim/" + named.claim
    form = "&".join(
        f"{k}={quote(v.encode('utf-8', 'surrogatepass'))}"
        for k, v in (("csrf", csrf), ("new_password", new), ("confirm_password", again))
    )
    headers = [(b"Content-Type", b"application/x-www-form-urlencoded")]
    if nonce is not None:
        headers.append((b"Cookie", COOKIE.encode() + b"=" + nonce))
    answer = send(gb, b"POST", path, form.encode(), headers)
    assert answer.status in (400, 403), answer.status  # no valid CSRF pair was sent
