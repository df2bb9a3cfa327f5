"""The config file as a person edits it (guardbot/config.py): completed from the example, its
mistakes named by key, the environment over it. The command line's answers are in
tests/top/test_app.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from guardbot.config import Config, ConfigError, create_from_example, load
from guardbot.core.policy import room_facts
from tests.support.cli import EXAMPLE, edited, write

ROOT = Path(__file__).resolve().parents[2]
_yaml = YAML(typ="safe")


def section(name: str, replacement: str) -> tuple[str, str]:
    """The whole top-level section `name:` and its indented lines, replaced."""
    found = re.search(rf"^{name}:\n(?:(?: .*)?\n)+?(?=\S|\Z)", EXAMPLE, re.M)
    assert found, name
    return found.group(0), replacement + "\n"


def policy_of(config: Config, room_id: str) -> str:
    return room_facts(config.server_policy(), room_id, True, None, {}).policy


def test_example_with_tokens_loads(tmp_path: Path) -> None:
    config = load(str(write(tmp_path, edited())), environ={})
    assert config["appservice.port"] == 29330
    assert config["appservice.as_token"] == "as-secret"
    assert config.bot_user_id == "@guardbot:example.org"
    assert policy_of(config, "!any:example.org") == "forbid"


def test_example_as_shipped_asks_for_tokens(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^appservice\.as_token: not generated yet"):
        load(str(write(tmp_path, EXAMPLE)), environ={})


def test_short_file_is_completed_from_the_example(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "homeserver:\n  domain: my.org\nappservice:\n  as_token: a\n  hs_token: h\n"
        "policy:\n  rooms:\n    '!abc:my.org': 'off'\n",
    )
    before = path.read_text()
    config = load(str(path), environ={})
    assert config.bot_user_id == "@guardbot:my.org"
    assert config["homeserver.address"] == "http://localhost:8008"  # the example's default
    assert policy_of(config, "!abc:my.org") == "off"
    assert policy_of(config, "!other:my.org") == "forbid"
    assert path.read_text() == before  # completed in memory; the file stays the admin's


def test_emptied_section_means_its_defaults(tmp_path: Path) -> None:
    config = load(str(write(tmp_path, edited(section("directory", "directory:")))), environ={})
    assert config["directory.poll_interval"] == 10


@pytest.mark.parametrize(
    "replacement,key",
    [
        (("    port: 29330", "    port: 99999"), "appservice.port"),
        (("    port: 29330", "    port: '80'"), "appservice.port"),
        (("    port: 29330", "    port: true"), "appservice.port"),
        (("address: http://localhost:8008", "address: ftp://localhost"), "homeserver.address"),
        (("address: http://localhost:8008", "address: 'http://[::1'"), "homeserver.address"),
        (("address: http://localhost:29330", "address: localhost:29330"), "appservice.address"),
        (("listed_rooms: forbid", "listed_rooms: ban"), "policy.listed_rooms"),
        (("rooms: {}", "rooms: {'#alias:example.org': kick}"), "policy.rooms.#alias:example.org"),
        (("rooms: {}", "rooms: {'!a:example.org': ban}"), "policy.rooms.!a:example.org"),
        (("rooms: {}", "rooms: ['!a:example.org']"), "policy.rooms"),
        (("database: sqlite:guardbot.db", "database: mysql://db"), "database"),
        (("bot_username: guardbot", "bot_username: Guard Bot"), "appservice.bot_username"),
        (("exempt_users: []", "exempt_users: [bob]"), "bot.exempt_users"),
        (
            ("auto_join_listed_rooms: false", "auto_join_listed_rooms: 'yes'"),
            "bot.auto_join_listed_rooms",
        ),
        (("poll_interval: 10", "poll_interval: 0"), "directory.poll_interval"),
        (("as_token: as-secret", "as_token: generate"), "appservice.as_token"),
        (("hs_token: hs-secret", "hs_token: ''"), "appservice.hs_token"),
        (("    port: 29330", "    portt: 29330"), "appservice.portt"),
        (("database: sqlite", "databse: sqlite"), "databse"),
        (section("homeserver", "homeserver: 5"), "homeserver"),
        (section("logging", "logging: 5"), "logging"),
    ],
)
def test_broken_value_names_its_key(tmp_path: Path, replacement: tuple[str, str], key: str) -> None:
    path = write(tmp_path, edited(replacement))
    with pytest.raises(ConfigError) as caught:
        load(str(path), environ={})
    message = str(caught.value)
    assert message.startswith(key + ": ")
    assert "\n" not in message


@pytest.mark.parametrize(
    "typo,suggestion",
    [
        (("    port: 29330", "    portt: 29330"), "appservice.port"),
        (("database: sqlite", "databse: sqlite"), "database"),
        (("kick_reason: >-", "kick_reasons: >-"), "policy.kick_reason"),
    ],
)
def test_mistyped_key_suggests_the_right_one(tmp_path: Path, typo, suggestion: str) -> None:
    with pytest.raises(ConfigError, match=rf"unknown config key \(did you mean {suggestion}\?\)"):
        load(str(write(tmp_path, edited(typo))), environ={})


def test_missing_value_is_named(tmp_path: Path) -> None:
    config = Config(str(write(tmp_path, "appservice:\n  port: 8000\n")))
    config.load()
    with pytest.raises(ConfigError, match=r"^homeserver\.address: missing$"):
        config.validate()
    path = write(tmp_path, edited(), "full.yaml")
    with pytest.raises(ConfigError, match=r"^homeserver\.address: missing$"):
        load(str(path), environ={"GUARDBOT_HOMESERVER__ADDRESS": "null"})


def test_config_that_is_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        load(str(write(tmp_path, "- homeserver\n")), environ={})
    with pytest.raises(ConfigError, match="no such config file"):
        load(str(tmp_path / "absent.yaml"), environ={})


def test_environment_wins_and_is_not_written_back(tmp_path: Path) -> None:
    path = write(tmp_path, edited())
    environ = {
        "GUARDBOT_APPSERVICE__PORT": "1234",
        "GUARDBOT_POLICY__LISTED_ROOMS": "kick",
        "GUARDBOT_APPSERVICE__AS_TOKEN": "from-env",
        "GUARDBOT_TEST_POSTGRES": "not a config key",
        "OTHER": "ignored",
    }
    config = load(str(path), environ=environ)
    assert config["appservice.port"] == 1234
    assert policy_of(config, "!r:example.org") == "kick"
    assert config["appservice.as_token"] == "from-env"
    on_disk = _yaml.load(path.read_text())
    assert on_disk["appservice"]["port"] == 29330
    assert on_disk["policy"]["listed_rooms"] == "forbid"
    assert on_disk["appservice"]["as_token"] == "as-secret"
    assert "from-env" not in path.read_text()


def test_environment_mistakes_are_one_line(tmp_path: Path) -> None:
    path = str(write(tmp_path, edited()))
    with pytest.raises(ConfigError, match=r"^appservice\.port: must be a port"):
        load(path, environ={"GUARDBOT_APPSERVICE__PORT": "abc"})
    with pytest.raises(ConfigError, match=r"^appservice\.portt: .*did you mean appservice\.port"):
        load(path, environ={"GUARDBOT_APPSERVICE__PORTT": "1"})
    with pytest.raises(ConfigError, match=r"^appservice\.port: GUARDBOT_APPSERVICE__PORT") as e:
        load(path, environ={"GUARDBOT_APPSERVICE__PORT": "[1"})
    assert "\n" not in str(e.value)


def test_environment_reaches_into_free_form_logging(tmp_path: Path) -> None:
    path = str(write(tmp_path, edited()))
    config = load(path, environ={"GUARDBOT_LOGGING__LOGGERS__GUARDBOT__LEVEL": "DEBUG"})
    assert config["logging"]["loggers"]["guardbot"]["level"] == "DEBUG"


def test_create_from_example_copies_comments(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    create_from_example(str(path))
    text = path.read_text()
    assert "# guardbot configuration." in text
    assert "    # Where guardbot listens." in text
    with pytest.raises(ConfigError, match=r"^appservice\.as_token: not generated"):
        load(str(path), environ={})


def test_top_level_example_is_the_packaged_one() -> None:
    assert (ROOT / "config.example.yaml").read_text() == EXAMPLE


def test_env_matrix_ids_are_plain_strings(tmp_path: Path) -> None:
    path = write(tmp_path, edited())
    environ = {"GUARDBOT_MANAGEMENT_ROOM": "!abc:example.org", "GUARDBOT_BOT__EXEMPT_USERS": "[]"}
    config = load(str(path), environ=environ)
    assert config["management_room"] == "!abc:example.org"


def test_tooling_variables_are_not_config(tmp_path: Path) -> None:
    environ = {"GUARDBOT_DATA_DIR": "/data", "GUARDBOT_FAULT_SCALE": "full"}
    load(str(write(tmp_path, edited())), environ=environ)  # no "not a config key" error


def test_a_deleted_key_takes_its_default_and_is_not_written_back(tmp_path: Path) -> None:
    """A new admin deleted a key to get its default, and found it written back on the next
    start (even when guardbot then exited on that default)."""
    text = edited().replace("    poll_interval: 10\n", "")
    assert "poll_interval" not in text
    path = write(tmp_path, text)
    config = load(str(path), environ={})
    assert config["directory.poll_interval"] == 10
    assert path.read_text() == text


def test_a_secret_can_come_from_a_file_and_stays_out_of_the_environment(tmp_path: Path) -> None:
    path = write(tmp_path, edited())
    secret = tmp_path / "database"
    secret.write_text("postgres://guardbot:s3cret@db/guardbot\n")
    config = load(str(path), environ={"GUARDBOT_DATABASE_FILE": str(secret)})
    assert config["database"] == "postgres://guardbot:s3cret@db/guardbot"
    assert "s3cret" not in path.read_text()
    with pytest.raises(ConfigError, match=r"^database: GUARDBOT_DATABASE_FILE: cannot read"):
        load(str(path), environ={"GUARDBOT_DATABASE_FILE": str(tmp_path / "absent")})
