"""A named guest's account (named_guests/accounts.py): its status, and setting its password
through the homeserver's own /account/password, authorised with the derived password. Against
the scripted homeserver, on every supported database."""

from __future__ import annotations

import pytest

from devtools.named_guest_loop import NamedGuestLoop
from guardbot.core.observations import PasswordFound, PasswordSet
from guardbot.named_guests.accounts import AccountError, Accounts
from tests.support.fake_homeserver import FakeHomeserver

USER = "@named:example.org"
NEW = "a long and fine passphrase"


def accounts(named: NamedGuestLoop) -> Accounts:
    assert named.guard.parts.named_guests is not None
    return named.guard.parts.named_guests.accounts


async def observed(named: NamedGuestLoop) -> list[object]:
    return [row.observation for row in await named.store.inbox.take()]


async def test_the_status_of_a_named_guest_and_of_anyone_else(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    fake_hs.user(USER)
    await named.name(USER)
    status = await accounts(named).status(USER)
    assert status["pwlu"] is True and status["password_set"] is False
    assert status["nags_sent"] == 0 and status["next_nag_at"] is not None
    other = await accounts(named).status("@alice:example.org")
    assert (other["pwlu"], other["password_set"]) == (False, True)
    guest = await accounts(named).status("@7:example.org", is_guest=True)
    assert (guest["pwlu"], guest["password_set"]) == (False, False)


async def test_a_password_set_from_a_link_logs_in_changes_it_and_logs_out(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    fake_hs.user(USER, password=named.keys.password(USER))
    await named.name(USER)
    await observed(named)
    await accounts(named).set_password(USER, NEW, token=None)
    assert fake_hs.users[USER]["password"] == NEW
    assert [c.route for c in fake_hs.called() if c.method == "POST"] == [
        "login",
        "account_password",  # the first step: the homeserver asks for auth
        "account_password",
        "logout",
    ]
    row = await named.store.get(USER)
    assert row is not None and row.password_set and row.next_nag_at is None
    (told,) = await observed(named)
    assert isinstance(told, PasswordSet) and told.how == "on the page a reminder linked to"


async def test_a_weak_password_is_refused_before_the_homeserver_is_asked(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    fake_hs.user(USER)
    await named.name(USER)
    with pytest.raises(AccountError) as weak:
        await accounts(named).set_password(USER, "named", token=None)
    assert weak.value.errcode == "M_WEAK_PASSWORD"
    assert fake_hs.called() == []


async def test_someone_not_a_named_guest_or_with_a_password_of_their_own_is_refused(
    named: NamedGuestLoop, fake_hs: FakeHomeserver
) -> None:
    with pytest.raises(AccountError) as stranger:
        await accounts(named).set_password("@alice:example.org", NEW, token=None)
    assert stranger.value.status == 403 and "Not a named guest" in stranger.value.error
    fake_hs.user(USER, password="one of their own")  # set in their Matrix app
    await named.name(USER)
    await observed(named)
    with pytest.raises(AccountError) as own:
        await accounts(named).set_password(USER, NEW, token=None)
    assert own.value.error == "A password is already set for this account"
    assert fake_hs.users[USER]["password"] == "one of their own"
    (found,) = await observed(named)  # for a decision: no more reminders
    assert isinstance(found, PasswordFound) and not found.deactivated
