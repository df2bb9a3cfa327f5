"""`guardbot -g`: the registration and the config's tokens, written and rewritten as an admin
runs it again (guardbot/registration.py)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

from guardbot.config import load
from tests.support.cli import error_lines, guardbot

_yaml = YAML(typ="safe")


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
