"""Registering a named guest (named_guests/signup.py): the homeserver's /register with a
derived password, its user-interactive auth passed through untouched, a row only for an
account this registration made. Against the scripted homeserver, on every supported
database."""

from __future__ import annotations

from devtools.named_guest_loop import NamedGuestLoop
from guardbot.core.observations import NamedGuestRegistered
from guardbot.db.named_guest_store import ACTIVE
from guardbot.named_guests.signup import RegisterRequest, SignUp
from tests.support.fake_homeserver import FakeHomeserver

USER = "@newcomer:example.org"
DUMMY = {"type": "m.login.dummy", "session": "s"}


def sign_up(named: NamedGuestLoop) -> SignUp:
    assert named.guard.parts.named_guests is not None
    return named.guard.parts.named_guests.sign_up


async def test_the_first_step_gets_the_homeservers_flows_and_leaves_nothing(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    answer = await sign_up(named).register(RegisterRequest("Newcomer"))
    assert answer.status == 401 and answer.body["flows"] == [{"stages": ["m.login.dummy"]}]
    assert await named.store.get(USER) is None


async def test_an_account_is_made_with_the_derived_password_and_reminded(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    answer = await sign_up(named).register(RegisterRequest("Newcomer", auth=DUMMY))
    assert answer.status == 200 and answer.body["user_id"] == USER
    (sent,) = fake_hs.called("register")
    assert sent.body["username"] == "newcomer"  # the homeserver's spelling
    assert fake_hs.users[USER]["password"] == named.keys.password(USER)
    row = await named.store.get(USER)
    assert row is not None and row.state == ACTIVE and row.next_nag_at is not None
    (registered,) = [r.observation for r in await named.store.inbox.take()]
    assert isinstance(registered, NamedGuestRegistered) and registered.user_id == USER


async def test_a_name_taken_before_is_refused_and_leaves_no_row(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    fake_hs.user(USER)
    answer = await sign_up(named).register(RegisterRequest("newcomer", auth=DUMMY))
    assert (answer.status, answer.body["errcode"]) == (400, "M_USER_IN_USE")
    assert await named.store.get(USER) is None


async def test_only_a_guests_own_token_carries_its_rooms_over(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    fake_hs.user("@alice:example.org")
    not_a_guest = fake_hs.login_token("@alice:example.org")
    refused = await sign_up(named).register(
        RegisterRequest("newcomer", auth=DUMMY, guest_access_token=not_a_guest)
    )
    assert (refused.status, refused.body["error"]) == (
        403,
        "guest_access_token does not belong to a guest",
    )
    unknown = await sign_up(named).register(
        RegisterRequest("newcomer", auth=DUMMY, guest_access_token="syt_made_up")
    )
    assert unknown.status == 403 and "not a valid access token" in unknown.body["error"]
    assert fake_hs.called("register") == []


async def test_an_unreachable_homeserver_is_a_502(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    await fake_hs.close()
    answer = await sign_up(named).register(RegisterRequest("newcomer", auth=DUMMY))
    assert answer.status == 502 and answer.body["error"] == "The homeserver is unreachable"
