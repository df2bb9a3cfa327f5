"""The claim page in a real browser (Debian's headless Chromium through Playwright), against
guardbot and a real Synapse: the link from a reminder sets a password and ends the reminders."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.pwlu_client import (
    Api,
    as_user,
    assert_secrets_not_logged,
    claim_token,
    dm_room,
    keyring,
    login,
    nags,
    start_pwlu,
    unique,
    wait_for_nags,
)

CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM),
    reason=f"{CHROMIUM} is absent (apt-get install chromium; .ci/run installs it)",
)
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


async def reminder_link(homeserver: Homeserver, api: Api) -> tuple[dict, str, str]:
    registered = await api.register_pwlu(unique("claimer"))
    user = as_user(homeserver, registered)
    room = await dm_room(user, homeserver.bot_user_id)
    nag = (await wait_for_nags(user, room, homeserver.bot_user_id, 1))[0]
    return registered, room, claim_token(nag)


async def submit(page: Page, first: str, second: str) -> None:
    await page.get_by_label("New password", exact=True).fill(first)
    await page.get_by_label("New password, again").fill(second)
    await page.get_by_role("button", name="Set password").click()
    await page.wait_for_load_state()


async def test_claim_page_sets_the_password_and_ends_reminders(
    homeserver: Homeserver, start_guardbot: StartGuardbot, browser: Browser
) -> None:
    # Each reminder's link replaces the one before: one reminder, so the link stays.
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__EVERY="1h")
    api = Api(proc.url)
    registered, room, token = await reminder_link(homeserver, api)
    user_id = registered["user_id"]
    link = f"{proc.url}/_guardbot/claim/{token}"

    page = await browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    response = await page.goto(link)
    assert response is not None and response.status == 200
    assert await page.title() == "Set a password"
    assert await page.get_attribute("html", "lang") == "en"
    await page.get_by_role("heading", name="Set a password").wait_for()
    assert user_id in await page.inner_text("main")

    # Two different passwords: said, in an alert, the form kept.
    await submit(page, "one password 123", "another password 123")
    alert = page.get_by_role("alert")
    assert "not the same" in await alert.inner_text()
    assert await page.get_by_label("New password", exact=True).get_attribute("aria-invalid")

    new_password = "from the browser 2024!"
    await submit(page, new_password, new_password)
    await page.get_by_role("heading", name="Password set").wait_for()
    assert "You can now log in" in await page.get_by_role("status").inner_text()
    user = as_user(homeserver, registered)
    sent = len(await nags(user, room, homeserver.bot_user_id))  # none may follow from here
    assert all(url.startswith(proc.url + "/_guardbot/claim/") for url in requested), requested

    derived = keyring(homeserver).password(user_id)
    assert await login(homeserver, user_id, new_password) == 200
    assert await login(homeserver, user_id, derived) == 403
    status = await api.status(registered["access_token"])
    assert status["password_set"] is True and status["next_nag_at"] is None  # no more due
    assert len(await nags(user, room, homeserver.bot_user_id)) == sent

    # Single use: the link is spent.
    response = await page.goto(link)
    assert response is not None and response.status == 404
    await page.get_by_role("heading", name="This link no longer works").wait_for()
    assert_secrets_not_logged(proc, new_password, derived, token, registered["access_token"])


async def test_claim_page_refuses_forged_and_unknown_requests(
    homeserver: Homeserver, start_guardbot: StartGuardbot, browser: Browser
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver, PWLU__NAG__EVERY="1h")
    api = Api(proc.url)
    registered, _room, token = await reminder_link(homeserver, api)
    link = f"{proc.url}/_guardbot/claim/{token}"
    form = {"new_password": "forged pass 123", "confirm_password": "forged pass 123"}
    async with aiohttp.ClientSession() as session:
        # Another site's form: no CSRF cookie, no valid token.
        async with session.post(link, data={**form, "csrf": "x"}) as resp:
            assert resp.status == 403
            assert "expired" in await resp.text()
        async with session.get(f"{proc.url}/_guardbot/claim/{'A' * 43}") as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"].startswith("text/html")
        async with session.get(f"{proc.url}/_guardbot/claim/..%2F..%2Fetc") as resp:
            assert resp.status == 404
    derived = keyring(homeserver).password(registered["user_id"])
    assert await login(homeserver, registered["user_id"], derived) == 200  # nothing changed

    # The page the browser got works, and its headers keep the token where it belongs.
    page = await browser.new_page()
    response = await page.goto(link)
    assert response is not None
    headers = await response.all_headers()
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "default-src 'none'" in headers["content-security-policy"]
    assert_secrets_not_logged(proc, token, derived)
