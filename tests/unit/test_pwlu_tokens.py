"""Claim links and the claim form's CSRF token."""

from __future__ import annotations

import hashlib

from guardbot.named_guests.tokens import (
    csrf_ok,
    csrf_token,
    hash_token,
    new_claim_token,
    new_csrf_nonce,
    plausible_token,
)

KEY = b"k" * 32


def test_claim_tokens_are_random_and_stored_only_as_a_hash() -> None:
    token, stored = new_claim_token()
    other, _ = new_claim_token()
    assert token != other and len(token) >= 40
    assert stored == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    assert token not in stored
    assert plausible_token(token)


def test_implausible_tokens_are_turned_away_before_the_database() -> None:
    assert not plausible_token("short")
    assert not plausible_token("x" * 200)
    assert not plausible_token("a" * 30 + "/../")
    assert not plausible_token("a" * 30 + "%00")


def test_csrf_is_bound_to_the_nonce_and_the_claim_token() -> None:
    nonce = new_csrf_nonce()
    token_hash = hash_token("a-claim-token-aaaaaaaaaaaaaaa")
    good = csrf_token(KEY, nonce, token_hash)
    assert csrf_ok(KEY, nonce, token_hash, good)
    assert not csrf_ok(KEY, new_csrf_nonce(), token_hash, good)  # another browser's cookie
    assert not csrf_ok(KEY, nonce, hash_token("another-claim-token-aaaaaa"), good)
    assert not csrf_ok(b"x" * 32, nonce, token_hash, good)  # another server secret
    assert not csrf_ok(KEY, None, token_hash, good)  # no cookie
    assert not csrf_ok(KEY, nonce, token_hash, None)
    assert not csrf_ok(KEY, nonce, token_hash, "")
