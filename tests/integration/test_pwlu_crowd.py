"""A crowd picks names at once, against Synapse's default registration limit (rc_registration:
3 at once, then one every ~6 s per address). Each person comes from their own address through
a proxy that passes it on (here the test is that proxy: it connects from 127.0.0.1, which
guardbot trusts, and names each person's address in X-Forwarded-For). guardbot used to register
every named guest from its own address: 12 people waited 29 s at the median, 57 s at most,
behind 91 refusals. Now the homeserver counts each person against their own address, when it
believes guardbot's forwarding; doctor says whether it does, and what to set if not."""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from tests.support.doctor import doctor_line
from tests.support.homeserver import Homeserver, guardbot_starter, running_homeserver
from tests.support.pwlu_client import pwlu_env, unique

CROWD = 12
# Synapse's defaults (docs: rc_registration), which the other tests' homeservers relax.
STOCK = {
    "enable_registration": True,
    "enable_registration_without_verification": True,
    "rc_registration": {"per_second": 0.17, "burst_count": 3},
}


@pytest_asyncio.fixture(scope="module")
async def believing(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    """Set up as docs/named-guests.md advises: clients keep Synapse's default listener, and
    guardbot talks to a loopback listener of its own that believes X-Forwarded-For."""
    root = tmp_path_factory.mktemp("crowd-hs")
    async with running_homeserver(root, STOCK, guardbot_listener=True) as hs:
        yield hs


@pytest_asyncio.fixture(scope="module")
async def doubting(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    """Synapse's default listener: it sees only who connects."""
    async with running_homeserver(tmp_path_factory.mktemp("doubting-hs"), STOCK) as hs:
        yield hs


async def register_from(url: str, address: str, body: dict) -> tuple[int, int]:
    """One person from `address` through /register's user-interactive auth (guardbot's or
    Synapse's own), as a client does: (final status, 429s met on the way)."""
    headers = {"X-Forwarded-For": address}
    limited = 0
    async with aiohttp.ClientSession() as session:
        for _ in range(20):
            async with session.post(url, json=body, headers=headers) as resp:
                data = await resp.json()
            if resp.status == 429:
                limited += 1
                await asyncio.sleep(data.get("retry_after_ms", 1000) / 1000)
                continue
            if resp.status == 401 and "session" in data:
                body = {**body, "auth": {"type": "m.login.dummy", "session": data["session"]}}
                continue
            return resp.status, limited
    return 0, limited


async def test_a_crowd_gets_its_names_without_waiting_on_one_address(
    believing: Homeserver, tmp_path: pathlib.Path
) -> None:
    hs = believing
    async with guardbot_starter(hs, tmp_path) as start:
        proc = await start(**pwlu_env(hs, PWLU__TRUSTED_PROXIES="[127.0.0.1]"))
        url = proc.url + "/_guardbot/v1/pwlu/register"
        crowd = [
            register_from(url, f"203.0.113.{i + 1}", {"username": unique(f"crowd{i}")})
            for i in range(CROWD)
        ]
        answers = await asyncio.gather(*crowd)
        assert [status for status, _ in answers] == [200] * CROWD, answers
        assert sum(limited for _, limited in answers) == 0, answers
        line, _ = doctor_line(hs.config_path, proc.env, tmp_path, "client addresses")
    assert line.startswith("✓") and "their own address" in line, line
    synapse_log = hs.synapse.log_path.read_text(errors="replace")
    assert "rc_registration" not in synapse_log

    # The clients' own listener still believes nobody's header: one address, one allowance.
    direct = hs.synapse.base_url + "/_matrix/client/v3/register"
    spoofed = [
        register_from(
            direct,
            f"198.51.100.{i + 1}",
            {"username": unique(f"direct{i}"), "password": "a long direct password 1"},
        )
        for i in range(5)
    ]
    assert any(limited for _, limited in await asyncio.gather(*spoofed))


async def test_doctor_says_when_the_homeserver_sees_only_guardbot(
    doubting: Homeserver, tmp_path: pathlib.Path
) -> None:
    hs = doubting
    async with guardbot_starter(hs, tmp_path) as start:
        proc = await start(**pwlu_env(hs))
        line, _ = doctor_line(hs.config_path, proc.env, tmp_path, "client addresses")
    assert line.startswith("✗") and "saw guardbot's address (127.0.0.1)" in line, line
    assert "x_forwarded: true" in line
