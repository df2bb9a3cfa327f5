"""The pwlu: config section: durations, one-line errors naming the key, and -g's secret."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from guardbot import registration
from guardbot.config import Config, ConfigError, load, parse_duration

EXAMPLE = resources.files("guardbot").joinpath("example-config.yaml").read_text()
TOKENS = EXAMPLE.replace("as_token: generate", "as_token: a").replace(
    "hs_token: generate", "hs_token: h"
)
ON = {
    "GUARDBOT_PWLU__ENABLED": "true",
    "GUARDBOT_PWLU__SECRET": "x" * 40,
    "GUARDBOT_PWLU__PUBLIC_URL": "https://matrix.example.org",
}


def config_file(tmp_path: Path, text: str = TOKENS) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text,seconds",
    [
        ("90s", 90),
        ("10m", 600),
        ("3d", 259200),
        ("1h30m", 5400),
        ("2w", 1209600),
        ("500ms", 0.5),
        (" 12H ", 43200),
        (7, 7),
        (1.5, 1.5),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "3 days", "10", "m", "-5s", "0s", "1x", True, None, [1]])
def test_not_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_disabled_pwlu_needs_no_secret(tmp_path: Path) -> None:
    config = load(config_file(tmp_path), environ={})
    assert config["pwlu.enabled"] is False and config["pwlu.secret"] == "generate"


def test_enabled_pwlu_wants_a_generated_secret_and_a_public_url(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    with pytest.raises(ConfigError, match=r"^pwlu\.secret: not generated yet"):
        load(path, environ={"GUARDBOT_PWLU__ENABLED": "true"})
    with pytest.raises(ConfigError, match=r"^pwlu\.secret: too short"):
        load(path, environ={**ON, "GUARDBOT_PWLU__SECRET": "short"})
    with pytest.raises(ConfigError, match=r"^pwlu\.public_url: "):
        load(path, environ={**ON, "GUARDBOT_PWLU__PUBLIC_URL": ""})
    config = load(path, environ=ON)
    assert parse_duration(config["pwlu.nag.every"]) == 3 * 86400


@pytest.mark.parametrize(
    "key,value",
    [
        ("NAG__FIRST_AFTER", "soon"),
        ("NAG__EVERY", "0s"),
        ("NAG__MAX", "-1"),
        ("NAG__TEMPLATE", "Hi {nmae}"),
        ("NAG__HTML_TEMPLATE", "''"),
        ("CLAIM_TOKEN_TTL", "forever"),
        ("TRUSTED_PROXIES", "[10.0.0.0/33]"),
        ("RATE_LIMIT__PER_SECOND", "0"),
        ("PREVIOUS_SECRETS", "secret"),
    ],
)
def test_bad_pwlu_value_names_its_key(tmp_path: Path, key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load(config_file(tmp_path), environ={**ON, f"GUARDBOT_PWLU__{key}": value})
    message = str(caught.value)
    assert message.startswith("pwlu." + key.lower().replace("__", ".") + ": ")
    assert "\n" not in message


def test_generate_makes_a_secret_once_and_keeps_a_real_one(tmp_path: Path) -> None:
    config = Config(config_file(tmp_path))
    config.load()
    assert "pwlu.secret" in registration.fill_tokens(config)
    first = config["pwlu.secret"]
    assert first != "generate" and len(first) >= 32
    # -g --new-tokens: new appservice and door tokens, the same PWLU secret
    assert "pwlu.secret" not in registration.fill_tokens(config, renew=True)
    assert config["pwlu.secret"] == first
