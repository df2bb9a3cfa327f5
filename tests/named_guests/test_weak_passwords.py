"""guardbot's floor for a named guest's new password."""

from __future__ import annotations

import pytest

from guardbot.named_guests.weak_passwords import common, weakness

USER = "@alice:example.org"


@pytest.mark.parametrize(
    "password,why",
    [
        ("short", "at least 10 characters"),
        ("password", "at least 10 characters"),
        ("Password123!", "most common"),
        ("qwertyuiop", "most common"),
        ("iloveyou2024", "most common"),
        ("aaaaaaaaaaaa", "more than one or two"),
        ("abababababab", "more than one or two"),
        ("Alice-in-wonderland", "username"),
    ],
)
def test_weak_passwords_are_refused_with_the_reason(password: str, why: str) -> None:
    assert why in (weakness(password, USER, 10) or "")


@pytest.mark.parametrize("password", ["correct horse battery", "Good-Enough-123", "tr0ub4dor&3x"])
def test_good_passwords_pass(password: str) -> None:
    assert weakness(password, USER, 10) is None


def test_the_list_is_packaged_and_lowercase() -> None:
    words = common()
    assert len(words) > 200 and "password" in words and "123456" in words
    assert all(w == w.lower() and w.strip() == w for w in words)
