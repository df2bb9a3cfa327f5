"""`guardbot -g`: fresh tokens into the config, and the registration file for the homeserver."""

from __future__ import annotations

import re
import secrets
from typing import Any

from ruamel.yaml import YAML

from guardbot.config import Config


def build(config: Config) -> dict[str, Any]:
    domain = re.escape(config["homeserver.domain"])
    bot = re.escape(config["appservice.bot_username"])
    return {
        "id": config["appservice.id"],
        "url": config["appservice.address"],
        "as_token": config["appservice.as_token"],
        "hs_token": config["appservice.hs_token"],
        "sender_localpart": config["appservice.bot_username"],
        "rate_limited": False,
        # Why these namespaces: see the appservice section of config.example.yaml.
        "namespaces": {
            "users": [
                {"regex": f"^@{bot}:{domain}$", "exclusive": True},
                {"regex": f"^@[0-9]+:{domain}$", "exclusive": False},
            ],
            "aliases": [],
            "rooms": [],
        },
    }


def new_tokens(config: Config) -> None:
    config["appservice.as_token"] = secrets.token_urlsafe(48)
    config["appservice.hs_token"] = secrets.token_urlsafe(48)
    # Unlike the tokens, a real PWLU secret is kept: named guests' passwords derive from it, so
    # replacing it is a rotation the operator does on purpose (see pwlu.previous_secrets).
    if config.get("pwlu.secret", "generate") == "generate":
        config["pwlu.secret"] = secrets.token_urlsafe(48)


def write(registration: dict[str, Any], path: str) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    with open(path, "w") as stream:
        yaml.dump(registration, stream)
