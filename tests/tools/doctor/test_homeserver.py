"""`guardbot doctor`'s checks of the homeserver (guardbot/tools/doctor/homeserver.py): is it
there, does it know guardbot's registration, is guardbot's user registered and a server admin.
Against the scripted homeserver; the whole doctor against a real Synapse is in
tests/integration/test_doctor.py."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from guardbot.config import load
from guardbot.matrix.client import Homeserver
from guardbot.tools.doctor.homeserver import HomeserverChecks
from guardbot.tools.doctor.report import Report
from tests.support.cli import edited, write
from tests.support.fake_homeserver import FakeHomeserver

BOT = "@guardbot:example.org"


@pytest.fixture
async def checks(fake_hs: FakeHomeserver, tmp_path: Path) -> AsyncIterator[HomeserverChecks]:
    address = ("address: http://localhost:8008", f"address: {fake_hs.url}")
    config = load(str(write(tmp_path, edited(address))), environ={})
    hs = Homeserver(fake_hs.url, config["appservice.as_token"], BOT)
    out = io.StringIO()
    yield HomeserverChecks(
        config,
        hs,
        Report(out),
        fix=False,
        read_only=True,
        regen="run guardbot -g",
        command="guardbot doctor",
    )
    await hs.close()


def lines(checks: HomeserverChecks) -> list[str]:
    out = checks.report.stream
    assert isinstance(out, io.StringIO)
    return out.getvalue().splitlines()


async def test_a_homeserver_that_answers_is_reachable_and_one_that_does_not_is_not(
    fake_hs: FakeHomeserver, checks: HomeserverChecks
) -> None:
    assert await checks.reachable()
    assert lines(checks)[-1].startswith(f"[ok] homeserver: {fake_hs.url} answers")
    await fake_hs.close()
    assert not await checks.reachable()
    assert lines(checks)[-1].startswith(f"[FAIL] homeserver: cannot reach {fake_hs.url}")


async def test_the_homeserver_must_know_guardbots_token(
    fake_hs: FakeHomeserver, checks: HomeserverChecks
) -> None:
    assert not await checks.appservice_known("registration.yaml")
    assert "does not know appservice.as_token" in lines(checks)[-1]
    fake_hs.tokens["as-secret"] = "@someone-else:example.org"
    assert not await checks.appservice_known("registration.yaml")
    assert "has sender @someone-else:example.org" in lines(checks)[-1]
    fake_hs.tokens["as-secret"] = BOT
    assert await checks.appservice_known("registration.yaml")
    assert lines(checks)[-1].startswith("[ok] appservice: the homeserver loaded")


async def test_guardbots_user_must_be_a_server_admin(
    fake_hs: FakeHomeserver, checks: HomeserverChecks
) -> None:
    await checks.bot_user()
    assert lines(checks)[-2:] == [
        f"[ok] bot user: {BOT} is registered",
        f"[ok] bot admin: {BOT} is a server admin",
    ]
    fake_hs.bot_is_admin = False
    fake_hs.user(BOT)  # registered: it has a profile
    await checks.bot_user()
    assert lines(checks)[-1].startswith(f"[FAIL] bot admin: {BOT} is not a server admin")
    assert checks.report.failures == 1
