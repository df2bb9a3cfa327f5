"""The config file as a person edits it, and the CLI's answers to their mistakes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from guardbot.config import Config, ConfigError, create_from_example, load
from guardbot.core.policy import room_facts

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = resources.files("guardbot").joinpath("example-config.yaml").read_text()
TOKENS = {"as_token: generate": "as_token: as-secret", "hs_token: generate": "hs_token: hs-secret"}
_yaml = YAML(typ="safe")


def edited(*replacements: tuple[str, str]) -> str:
    text = EXAMPLE
    for old, new in [*TOKENS.items(), *replacements]:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def section(name: str, replacement: str) -> tuple[str, str]:
    """The whole top-level section `name:` and its indented lines, replaced."""
    found = re.search(rf"^{name}:\n(?:(?: .*)?\n)+?(?=\S|\Z)", EXAMPLE, re.M)
    assert found, name
    return found.group(0), replacement + "\n"


# -- loading --------------------------------------------------------------------------------
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


# -- environment ----------------------------------------------------------------------------
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


# -- the example ----------------------------------------------------------------------------
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


# -- the command line -----------------------------------------------------------------------
def guardbot(tmp_path: Path, *args: str, env: dict[str, str] | None = None):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "guardbot", *args],
        cwd=tmp_path,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_lines(stderr: str) -> list[str]:
    """stderr without the example config's INFO/DEBUG log lines."""
    return [
        line for line in stderr.splitlines() if not re.match(r"^\[[^\]]+\] \[(INFO|DEBUG)@", line)
    ]


def test_generate_creates_config_and_registration(tmp_path: Path) -> None:
    first = guardbot(tmp_path, "-g", "-r", "registration.yaml")
    assert first.returncode == 0, first.stderr
    assert not (tmp_path / "registration.yaml").exists()  # not for example.org
    result = guardbot(
        tmp_path,
        "-g",
        "-r",
        "registration.yaml",
        env={"GUARDBOT_HOMESERVER__ADDRESS": "http://hs:8008"},
    )
    assert result.returncode == 0, result.stderr
    text = (tmp_path / "config.yaml").read_text()
    assert "    # Written by `guardbot -c config.yaml -g -r registration.yaml`." in text
    config = _yaml.load(text)["appservice"]
    reg = _yaml.load((tmp_path / "registration.yaml").read_text())
    assert len(config["as_token"]) >= 32 and len(config["hs_token"]) >= 32
    assert config["as_token"] != config["hs_token"]
    assert (reg["as_token"], reg["hs_token"]) == (config["as_token"], config["hs_token"])
    assert (reg["id"], reg["url"]) == ("guardbot", "http://localhost:29330")
    assert reg["sender_localpart"] == "guardbot"
    assert reg["rate_limited"] is False
    bot_ns, numeric_ns = reg["namespaces"]["users"]
    assert bot_ns["exclusive"] is True and numeric_ns["exclusive"] is False
    assert re.fullmatch(bot_ns["regex"], "@guardbot:example.org")
    assert not re.fullmatch(bot_ns["regex"], "@guardbotx:example.org")
    assert re.fullmatch(numeric_ns["regex"], "@1234:example.org")
    assert not re.fullmatch(numeric_ns["regex"], "@alice:example.org")
    assert not re.fullmatch(numeric_ns["regex"], "@1234:exampleXorg")
    # Synapse matches namespaces with re.match (a prefix match): the regex must anchor its end.
    assert not re.match(numeric_ns["regex"], "@1234:example.org.evil")
    assert reg["namespaces"]["rooms"] == []
    # The generated config is ready to load as it is.
    assert load(str(tmp_path / "config.yaml"), environ={})["appservice.as_token"] == reg["as_token"]


def test_the_first_generate_says_to_edit_the_config_before_anything_else(tmp_path: Path) -> None:
    """A new admin followed the first run's "Next:" and installed a registration for
    example.org; the first run now says to edit the config and run -g again, and only then
    what to do with the registration (and the door's homeserver.yaml entry)."""
    first = guardbot(tmp_path, "-g", "-r", "registration.yaml")
    assert first.returncode == 0, first.stderr
    assert "Next: edit config.yaml" in first.stdout and "run this command again" in first.stdout
    assert "app_service_config_files" not in first.stdout
    assert not (tmp_path / "registration.yaml").exists()
    path = tmp_path / "config.yaml"
    path.write_text(path.read_text().replace("domain: example.org", "domain: my.org"))
    again = guardbot(tmp_path, "-g", "-r", "registration.yaml")
    assert "app_service_config_files" in again.stdout and "synapse_http_antispam" in again.stdout
    assert "Wrote registration.yaml" in again.stdout
    token = _yaml.load(path.read_text())["antispam"]["token"]
    assert token != "generate" and token not in again.stdout  # the secret stays in the file


def test_generate_again_keeps_every_token_and_follows_edits(tmp_path: Path) -> None:
    """The README invites a re-run of -g; one that replaced antispam.token stopped every join on
    the server (the door module refused them all with "Wrong antispam token")."""
    assert guardbot(tmp_path, "-g").returncode == 0
    path = tmp_path / "config.yaml"
    path.write_text(path.read_text().replace("domain: example.org", "domain: my.org"))
    assert guardbot(tmp_path, "-g").returncode == 0  # the first real registration
    before = _yaml.load(path.read_text())
    registration_before = (tmp_path / "registration.yaml").read_text()

    again = guardbot(tmp_path, "-g")
    assert again.returncode == 0, again.stderr
    after = _yaml.load(path.read_text())
    for section, key in (
        ("appservice", "as_token"),
        ("appservice", "hs_token"),
        ("antispam", "token"),
        ("pwlu", "secret"),
    ):
        assert after[section][key] == before[section][key], key
    assert (tmp_path / "registration.yaml").read_text() == registration_before
    assert "Kept every token" in again.stdout and "registration.yaml: unchanged" in again.stdout
    assert "Nothing changed: nothing to update or restart." in again.stdout
    assert "synapse_http_antispam" not in again.stdout  # homeserver.yaml's entry stays as is

    path.write_text(
        path.read_text().replace(
            "address: http://localhost:29330", "address: http://guardbot.lan:29330"
        )
    )
    moved = guardbot(tmp_path, "-g")
    reg = _yaml.load((tmp_path / "registration.yaml").read_text())
    assert reg["url"] == "http://guardbot.lan:29330"
    assert reg["as_token"] == before["appservice"]["as_token"]
    assert "it follows appservice.address, which changed" in moved.stdout
    assert "Restart the homeserver" in moved.stdout
    assert "antispam.token" not in moved.stdout  # the door's token did not change
    assert "# Where guardbot listens." in path.read_text()  # comments survive


def test_generate_new_tokens_replaces_them_and_says_what_to_update(tmp_path: Path) -> None:
    assert guardbot(tmp_path, "-g").returncode == 0
    path = tmp_path / "config.yaml"
    path.write_text(path.read_text().replace("domain: example.org", "domain: my.org"))
    assert guardbot(tmp_path, "-g").returncode == 0
    before = _yaml.load(path.read_text())
    result = guardbot(tmp_path, "-g", "--new-tokens")
    assert result.returncode == 0, result.stderr
    after = _yaml.load(path.read_text())
    reg = _yaml.load((tmp_path / "registration.yaml").read_text())
    assert after["appservice"]["as_token"] != before["appservice"]["as_token"]
    assert after["antispam"]["token"] != before["antispam"]["token"]
    assert after["pwlu"]["secret"] == before["pwlu"]["secret"]  # rotated only on purpose
    assert reg["as_token"] == after["appservice"]["as_token"]
    out = result.stdout
    assert "appservice.as_token, appservice.hs_token, antispam.token" in out
    assert "homeserver.yaml's synapse_http_antispam entry (authorization)" in out
    assert "Restart the homeserver" in out and "restart) guardbot" in out
    for secret in (after["appservice"]["as_token"], after["antispam"]["token"]):
        assert secret not in out


def test_generate_never_writes_tokens_into_the_checkouts_files(tmp_path: Path) -> None:
    """In a clone, `-r registration.yaml` named the repository's example file."""
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    example = tmp_path / "registration.yaml"
    example.write_text("id: guardbot\n")
    subprocess.run(["git", "-C", str(tmp_path), "add", "registration.yaml"], check=True)
    result = guardbot(tmp_path, "-g", "-r", "registration.yaml")
    assert result.returncode != 0
    (line,) = error_lines(result.stderr)
    assert "registration.yaml: this file belongs to the git checkout" in line
    assert example.read_text() == "id: guardbot\n"
    assert not (tmp_path / "config.yaml").exists()


def test_help_lists_the_subcommands(tmp_path: Path) -> None:
    result = guardbot(tmp_path, "--help")
    assert result.returncode == 0
    assert "guardbot doctor" in result.stdout and "guardbot audit" in result.stdout
    assert "--new-tokens" in result.stdout


@pytest.mark.parametrize(
    "replacement,key",
    [
        (("    port: 29330", "    portt: 29330"), "appservice.portt"),
        (("    port: 29330", "    port: 70000"), "appservice.port"),
        (("address: http://localhost:8008", "address: 'http://[::1'"), "homeserver.address"),
        (("rooms: {}", "rooms: [x]"), "policy.rooms"),
        (("listed_rooms: forbid", "listed_rooms: ban"), "policy.listed_rooms"),
    ],
)
def test_cli_config_mistake_is_one_line(tmp_path: Path, replacement, key: str) -> None:
    write(tmp_path, edited(replacement))
    result = guardbot(tmp_path, "-c", "config.yaml")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert key + ":" in line


def test_cli_generate_refuses_a_mistyped_config(tmp_path: Path) -> None:
    write(tmp_path, edited(("    port: 29330", "    portt: 29330")))
    result = guardbot(tmp_path, "-g")
    assert result.returncode != 0
    (line,) = result.stderr.splitlines()
    assert "appservice.portt:" in line and "did you mean appservice.port" in line
    assert not (tmp_path / "registration.yaml").exists()


def test_cli_unreachable_homeserver(tmp_path: Path) -> None:
    write(tmp_path, edited(("address: http://localhost:8008", "address: http://127.0.0.1:1")))
    result = guardbot(tmp_path, "-c", "config.yaml")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert "homeserver.address" in line and "127.0.0.1:1" in line


def test_cli_unreachable_database(tmp_path: Path) -> None:
    write(tmp_path, edited())
    url = "postgres://nobody:hunter2@127.0.0.1:1/x"
    result = guardbot(tmp_path, "-c", "config.yaml", env={"GUARDBOT_DATABASE": url})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    (line,) = error_lines(result.stderr)
    assert line.startswith("guardbot: database:")
    assert "hunter2" not in result.stderr


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


def test_a_second_guardbot_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    """SQLite serves one guardbot: a second process on the same file would act too. It is
    refused before it opens the database, and told to use PostgreSQL for a pair."""
    import fcntl

    write(tmp_path, edited(("database: sqlite:guardbot.db", "database: sqlite:shared.db")))
    with open(tmp_path / "shared.db.lock", "w") as held:
        held.write("pid 4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the first guardbot, still running
        result = guardbot(tmp_path, "-c", "config.yaml")
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in error_lines(result.stderr) if line.startswith("guardbot:")]
    assert "shared.db is in use by guardbot pid 4242" in line and "PostgreSQL" in line
    assert not (tmp_path / "shared.db").exists()  # refused before touching the database
