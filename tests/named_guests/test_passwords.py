"""Named guests' derived passwords: stable, per user, per secret, and rotatable."""

from __future__ import annotations

import pytest

from guardbot.named_guests.passwords import KeyRing, UnknownKey, key_id

SECRET = "s" * 48
OLD = "o" * 48


def test_same_user_same_secret_same_password() -> None:
    assert KeyRing(SECRET).password("@a:x") == KeyRing(SECRET).password("@a:x")


def test_password_differs_per_user_and_per_secret() -> None:
    ring = KeyRing(SECRET)
    assert ring.password("@a:x") != ring.password("@b:x")
    assert ring.password("@a:x") != KeyRing(OLD).password("@a:x")


def test_password_meets_common_password_policies() -> None:
    password = KeyRing(SECRET).password("@alice:example.org")
    assert len(password) >= 40
    assert any(c.isdigit() for c in password)
    assert any(c.islower() for c in password) and any(c.isupper() for c in password)
    assert any(not c.isalnum() for c in password)
    assert SECRET not in password


def test_rotation_keeps_old_accounts_working() -> None:
    before = KeyRing(OLD)
    old_kid = before.current
    made_then = before.password("@a:x")
    after = KeyRing(SECRET, previous=[OLD])
    assert after.current == key_id(SECRET) != old_kid
    assert after.password("@a:x", old_kid) == made_then
    assert after.password("@a:x") == KeyRing(SECRET).password("@a:x")


def test_dropped_secret_is_an_unknown_key_not_a_wrong_password() -> None:
    old_kid = KeyRing(OLD).current
    ring = KeyRing(SECRET)
    assert not ring.knows(old_kid)
    with pytest.raises(UnknownKey) as e:
        ring.password("@a:x", old_kid)
    assert OLD not in str(e.value)


def test_any_username_a_client_can_send_derives_without_error() -> None:
    ring = KeyRing(SECRET)
    assert ring.password("@\ud800odd:x") != ring.password("@odd:x")  # lone surrogate (JSON)
    assert ring.password("@ünïcode:x") == KeyRing(SECRET).password("@ünïcode:x")


def test_key_id_does_not_reveal_the_secret() -> None:
    kid = key_id(SECRET)
    assert len(kid) == 12 and SECRET[:12] != kid


def test_subkeys_differ_by_purpose_and_from_passwords() -> None:
    ring = KeyRing(SECRET)
    assert ring.subkey("claim-csrf") != ring.subkey("other")
    assert ring.subkey("claim-csrf") == KeyRing(SECRET).subkey("claim-csrf")
