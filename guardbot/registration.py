"""`guardbot -g`: fresh tokens into the config, and the registration file for the homeserver."""

from __future__ import annotations

import io
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


# What guardbot answers at the door; anything else the module would send it is not asked.
DOOR_CALLBACKS = ("user_may_join_room", "user_may_invite", "user_may_publish_room")


def door_module(config: Config, token: str) -> dict[str, Any]:
    """The `modules:` entry for homeserver.yaml that makes Synapse ask guardbot at the door.
    fail_open: an unreachable guardbot lets every join through (the event path is the
    backstop); without it, a guardbot outage would refuse every join on the server."""
    return {
        "module": "synapse_http_antispam.HTTPAntispam",
        "config": {
            "base_url": config["appservice.address"].rstrip("/") + "/_guardbot/antispam",
            "authorization": token,
            "enabled_callbacks": list(DOOR_CALLBACKS),
            "fail_open": dict.fromkeys(DOOR_CALLBACKS, True),
            "do_ping": True,
        },
    }


def new_tokens(config: Config) -> None:
    config["appservice.as_token"] = secrets.token_urlsafe(48)
    config["appservice.hs_token"] = secrets.token_urlsafe(48)
    config["antispam.token"] = secrets.token_urlsafe(48)
    # Unlike the tokens, a real PWLU secret is kept: named guests' passwords derive from it, so
    # replacing it is a rotation the operator does on purpose (see pwlu.previous_secrets).
    if config.get("pwlu.secret", "generate") == "generate":
        config["pwlu.secret"] = secrets.token_urlsafe(48)


def dump_yaml(data: dict[str, Any]) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def write(registration: dict[str, Any], path: str) -> None:
    yaml = YAML()
    yaml.default_flow_style = False
    with open(path, "w") as stream:
        yaml.dump(registration, stream)
