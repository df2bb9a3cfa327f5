"""The claim page (named_guests/claim.py): a reminder's link opens a form for that named guest
only, and the form sets their password at the homeserver; a made-up link, a stale form or two
different passwords set nothing. Served as guardbot serves it, against the scripted
homeserver, on every supported database."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from devtools.named_guest_loop import NamedGuestLoop
from guardbot.named_guests.claim import COOKIE
from guardbot.named_guests.tokens import new_claim_token
from tests.support.fake_homeserver import FakeHomeserver

USER = "@named:example.org"
NEW = "a long and fine passphrase"


async def link(named: NamedGuestLoop, fake_hs: FakeHomeserver) -> str:
    """A named guest, and the path of their reminder's claim link."""
    fake_hs.user(USER, password=named.keys.password(USER))
    await named.name(USER)
    token, token_hash = new_claim_token()
    now = named.clock.now_ms()
    await named.store.add_claim(USER, token_hash, now, now + 3_600_000)
    return f"/_guardbot/claim/{token}"


async def opened(served: TestClient, path: str) -> tuple[str, str]:
    """The form's CSRF token and the cookie it came with."""
    resp = await served.get(path)
    assert resp.status == 200
    html = await resp.text()
    assert USER in html
    csrf = re.search(r'name="csrf" value="([^"]+)"', html)
    assert csrf is not None
    return csrf.group(1), resp.cookies[COOKIE].value


async def test_the_link_sets_the_named_guests_password(
    named: NamedGuestLoop, fake_hs: FakeHomeserver, served: TestClient
) -> None:
    path = await link(named, fake_hs)
    csrf, nonce = await opened(served, path)
    form = {"csrf": csrf, "new_password": NEW, "confirm_password": NEW}
    resp = await served.post(path, data=form, headers={"Cookie": f"{COOKIE}={nonce}"})
    assert resp.status == 200 and "Password set" in await resp.text()
    assert fake_hs.users[USER]["password"] == NEW
    row = await named.store.get(USER)
    assert row is not None and row.password_set


async def test_a_made_up_link_opens_nothing(
    named: NamedGuestLoop, fake_hs: FakeHomeserver, served: TestClient
) -> None:
    await link(named, fake_hs)
    _, unknown = new_claim_token()
    for path in (f"/_guardbot/claim/{unknown}", "/_guardbot/claim/not-a-token"):
        resp = await served.get(path)
        assert resp.status == 404 and "Link not valid" in await resp.text()


async def test_a_stale_form_or_two_different_passwords_set_nothing(
    named: NamedGuestLoop, fake_hs: FakeHomeserver, served: TestClient
) -> None:
    path = await link(named, fake_hs)
    csrf, nonce = await opened(served, path)
    cookie = {"Cookie": f"{COOKIE}={nonce}"}
    differ = {"csrf": csrf, "new_password": NEW, "confirm_password": NEW + "!"}
    resp = await served.post(path, data=differ, headers=cookie)
    assert resp.status == 400 and "not the same" in await resp.text()
    stale = {"csrf": csrf, "new_password": NEW, "confirm_password": NEW}
    resp = await served.post(path, data=stale)  # no cookie: the form is not from this browser
    assert resp.status == 403 and "expired" in await resp.text()
    assert fake_hs.called("account_password") == []
    assert fake_hs.users[USER]["password"] == named.keys.password(USER)
