"""Claim link tokens and the claim form's CSRF tokens: pure functions, no storage.

A claim token is the only credential the claim page asks for, so it is random (256 bits), kept
by guardbot only as a SHA-256 (a copy of the database logs nobody in), and expires. The form's
CSRF token is a double submit bound to the claim token: the page sets a random nonce in a
cookie and puts HMAC(key, nonce, claim token hash) in the form, so a POST must come from a
browser that loaded this very page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def new_claim_token() -> tuple[str, str]:
    """(token for the link, hash for the database)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def plausible_token(token: str) -> bool:
    """Cheap shape check before any database look-up (url-safe base64, sane length)."""
    return 20 <= len(token) <= 100 and all(c.isalnum() or c in "-_" for c in token)


def new_csrf_nonce() -> str:
    return secrets.token_urlsafe(16)


def csrf_token(key: bytes, nonce: str, token_hash: str) -> str:
    return hmac.new(key, f"{nonce}|{token_hash}".encode(), "sha256").hexdigest()


def csrf_ok(key: bytes, nonce: str | None, token_hash: str, submitted: str | None) -> bool:
    if not nonce or not submitted:
        return False
    # Both are ASCII when genuine; anything else (lone surrogates from undecodable cookie
    # bytes, non-ASCII, which compare_digest refuses) made this raise: a 500, not a refusal.
    if not (nonce.isascii() and submitted.isascii()):
        return False
    return hmac.compare_digest(csrf_token(key, nonce, token_hash), submitted)
