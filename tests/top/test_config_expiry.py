"""The config keys of an account's end and of rooms beyond the directory (expiry.*,
policy.guest_free_rooms, policy.named_guests, pwlu.user_type): defaults, and mistakes named
by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardbot.config import ConfigError, load
from tests.support.cli import edited, write

DAY_MS = 86_400_000


def test_expiry_is_off_by_default_and_its_durations_read_as_the_admin_wrote_them(
    tmp_path: Path,
) -> None:
    path = str(write(tmp_path, edited()))
    rules = load(path, environ={}).expiry_rules()
    assert not rules.enabled and not rules.erase and not rules.dry_run
    on = load(
        path,
        environ={
            "GUARDBOT_EXPIRY__ENABLED": "true",
            "GUARDBOT_EXPIRY__GUESTS_IDLE": "2d",
            "GUARDBOT_BOT__EXEMPT_USERS": "['@kiosk:example.org']",
        },
    ).expiry_rules()
    assert on.enabled and on.guests_idle == 2 * DAY_MS
    # guardbot itself and the exempt users are never ended.
    assert on.exempt == {"@kiosk:example.org", "@guardbot:example.org"}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EXPIRY__GUESTS_IDLE", "soon", r"^expiry\.guests_idle: "),
        ("EXPIRY__ENABLED", "maybe", r"^expiry\.enabled: must be true or false"),
        ("POLICY__GUEST_FREE_ROOMS", "['lobby']", r"^policy\.guest_free_rooms: must be a list"),
        ("POLICY__GUEST_FREE_ROOMS", "['#lobby']", r"^policy\.guest_free_rooms: must be a list"),
        ("POLICY__NAMED_GUESTS", "deny", r"^policy\.named_guests: 'deny' is not one of allow"),
        ("PWLU__USER_TYPE", "Named Guest", r"^pwlu\.user_type: must be empty"),
    ],
)
def test_a_wrong_value_names_its_key(tmp_path: Path, name: str, value: str, message: str) -> None:
    path = str(write(tmp_path, edited()))
    with pytest.raises(ConfigError, match=message):
        load(path, environ={f"GUARDBOT_{name}": value})


def test_guest_free_rooms_take_room_ids_and_aliases(tmp_path: Path) -> None:
    path = str(write(tmp_path, edited()))
    rooms = "['!v12roomid', '!old:example.org', '#lobby:example.org']"
    config = load(path, environ={"GUARDBOT_POLICY__GUEST_FREE_ROOMS": rooms})
    assert config["policy.guest_free_rooms"] == [
        "!v12roomid",
        "!old:example.org",
        "#lobby:example.org",
    ]
    assert not config.link_only
    assert load(path, environ={"GUARDBOT_POLICY__NAMED_GUESTS": "link_only"}).link_only
