"""Claim links and the claim form's CSRF token."""

from __future__ import annotations

import hashlib

import pytest

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


@pytest.mark.parametrize(
    ("nonce", "submitted"),
    [("\udc80", "0" * 64), ("nonce", "é" * 64), ("nonce\udcff", "é"), ("nonce", "\udc80")],
)
def test_a_garbled_csrf_pair_is_refused_not_an_error(nonce: str, submitted: str) -> None:
    """Cookie bytes that are not UTF-8 arrive as lone surrogates, and compare_digest refuses
    non-ASCII str: both raised, and the claim page answered 500."""
    key = b"k" * 32
    assert csrf_ok(key, nonce, "hash", submitted) is False
    good_nonce = "abc"
    assert csrf_ok(key, good_nonce, "hash", csrf_token(key, good_nonce, "hash")) is True
