"""guardbot's command line (guardbot/app.py): its help, and its answers to a broken config, an
unreachable homeserver or database: one line, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from ruamel.yaml import YAML

from tests.support.cli import edited, error_lines, guardbot, write

_yaml = YAML(typ="safe")


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
