"""Named guests on a homeserver that asks more: a registration token stage before the dummy
one, and a password policy. guardbot passes both through untouched; its own derived passwords
meet the policy."""

from __future__ import annotations

import os
import pathlib
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import async_playwright

from tests.support.homeserver import GuardbotProcess, Homeserver, running_homeserver
from tests.support.pwlu_client import (
    Api,
    as_user,
    assert_secrets_not_logged,
    claim_token,
    dm_room,
    keyring,
    login,
    pwlu_env,
    unique,
    wait_for_nags,
)

CHROMIUM = "/usr/bin/chromium"
POLICY = {
    "enabled": True,
    "minimum_length": 12,
    "require_digit": True,
    "require_symbol": True,
    "require_lowercase": True,
    "require_uppercase": True,
}


@pytest.fixture(scope="module")
async def strict(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Homeserver]:
    extra = {
        "enable_registration": True,
        "enable_registration_without_verification": True,
        "registration_requires_token": True,
        "password_config": {"policy": POLICY},
    }
    async with running_homeserver(tmp_path_factory.mktemp("strict"), extra) as hs:
        yield hs


@pytest.fixture
async def guardbot(strict: Homeserver, tmp_path: pathlib.Path) -> AsyncIterator[GuardbotProcess]:
    # One reminder in a test's time: each one's link replaces the one before.
    settings = pwlu_env(strict, PWLU__NAG__EVERY="1h")
    env = {f"GUARDBOT_{k}": str(v) for k, v in settings.items()}
    env["GUARDBOT_DATABASE"] = f"sqlite:{tmp_path / 'guardbot.db'}"
    proc = GuardbotProcess(strict, tmp_path, env)
    await proc.start()
    try:
        yield proc
    finally:
        await proc.stop()


async def new_registration_token(hs: Homeserver) -> str:
    data = await hs.admin.request(
        "POST", "/_synapse/admin/v1/registration_tokens/new", {"uses_allowed": 1}
    )
    return data["token"]


async def register_with_token(api: Api, hs: Homeserver, username: str) -> dict:
    status, body = await api.register({"username": username})
    assert status == 401
    session = body["session"]
    token_auth = {"type": "m.login.registration_token", "session": session}
    auth = {**token_auth, "token": "wrong"}
    status, body = await api.register({"username": username, "auth": auth})
    assert status == 401 and body["errcode"] == "M_UNAUTHORIZED" and body["completed"] == []
    token = await new_registration_token(hs)
    auth = {**token_auth, "token": token}
    status, body = await api.register({"username": username, "auth": auth})
    assert status == 401 and body["completed"] == ["m.login.registration_token"]
    dummy = {"type": "m.login.dummy", "session": session}
    status, body = await api.register({"username": username, "auth": dummy})
    assert status == 200, body
    uses = await hs.admin.request("GET", f"/_synapse/admin/v1/registration_tokens/{token}")
    assert uses["completed"] == 1
    return body


async def test_registration_token_flow_passes_through(
    strict: Homeserver, guardbot: GuardbotProcess
) -> None:
    api = Api(guardbot.url)
    status, challenge = await api.register({"username": unique("tok")})
    assert status == 401
    assert challenge["flows"] == [{"stages": ["m.login.registration_token", "m.login.dummy"]}]
    registered = await register_with_token(api, strict, unique("tok"))
    # The derived password met every rule of the policy, and it logs in.
    derived = keyring(strict).password(registered["user_id"])
    assert await login(strict, registered["user_id"], derived) == 200
    assert (await api.status(registered["access_token"]))["pwlu"] is True
    assert_secrets_not_logged(guardbot, derived, registered["access_token"])


async def test_weak_password_refusal_passes_through_the_api(
    strict: Homeserver, guardbot: GuardbotProcess
) -> None:
    api = Api(guardbot.url)
    registered = await register_with_token(api, strict, unique("weak"))
    status, body = await api.set_password(registered["access_token"], "x")
    assert status == 400 and body["errcode"] == "M_WEAK_PASSWORD"  # guardbot's own minimum
    # Past guardbot's 10, short of the homeserver's 12: the homeserver's refusal.
    status, body = await api.set_password(registered["access_token"], "shorter-1A!")
    assert status == 400 and body["errcode"] == "M_PASSWORD_TOO_SHORT"  # the homeserver's
    status, body = await api.set_password(registered["access_token"], "longbutnodigits")
    assert status == 400 and body["errcode"] == "M_PASSWORD_NO_DIGIT"
    assert (await api.status(registered["access_token"]))["password_set"] is False
    status, body = await api.set_password(registered["access_token"], "Good-Enough-123")
    assert (status, body) == (200, {})
    assert await login(strict, registered["user_id"], "Good-Enough-123") == 200


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is absent")
async def test_claim_page_shows_the_homeservers_reason(
    strict: Homeserver, guardbot: GuardbotProcess
) -> None:
    api = Api(guardbot.url)
    registered = await register_with_token(api, strict, unique("weakpage"))
    user = as_user(strict, registered)
    room = await dm_room(user, strict.bot_user_id)
    token = claim_token((await wait_for_nags(user, room, strict.bot_user_id, 1))[0])
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{guardbot.url}/_guardbot/claim/{token}")
            reasons = {"x": "at least 10 characters", "shorter-1A!": "at least 12 characters"}
            for password in ("x", "shorter-1A!", "Strong-Enough-456"):
                await page.get_by_label("New password", exact=True).fill(password)
                await page.get_by_label("New password, again").fill(password)
                await page.get_by_role("button", name="Set password").click()
                await page.wait_for_load_state()
                if password in reasons:
                    # guardbot's own minimum first, then Synapse's own words.
                    alert = await page.get_by_role("alert").inner_text()
                    assert reasons[password] in alert, alert
            await page.get_by_role("heading", name="Password set").wait_for()
        finally:
            await browser.close()
    assert await login(strict, registered["user_id"], "Strong-Enough-456") == 200
