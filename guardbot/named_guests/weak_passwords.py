"""guardbot's floor for a named guest's new password, under the homeserver's own policy: long
enough, not one of the passwords people pick most often, not the username.

Length matters most, and a list of common passwords catches the rest of what is guessed first
(NIST SP 800-63B's blocklist). The homeserver's password_config applies on top, when it has one.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

_TAIL = re.compile(r"[\d\W_]+$")


@cache
def common() -> frozenset[str]:
    text = resources.files("guardbot.named_guests").joinpath("common-passwords.txt").read_text()
    return frozenset(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def weakness(password: str, user_id: str, min_length: int) -> str | None:
    """Why this password is refused, in words for the user; None if it is not."""
    if len(password) < min_length:
        return f"Use a password of at least {min_length} characters"
    lowered = password.lower()
    if lowered in common() or _TAIL.sub("", lowered) in common():
        return "That password is one of the most common ones; choose another"
    if len(set(lowered)) <= 2:
        return "Use more than one or two different characters"
    localpart = user_id[1:].split(":", 1)[0].lower()
    if len(localpart) >= 3 and localpart in lowered:
        return "Do not use your username in your password"
    return None
