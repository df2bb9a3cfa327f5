"""`guardbot -g`: the appservice registration for the homeserver, and the secrets it needs.

Safe to run again: every token and secret already in the config is kept (a new
`antispam.token` alone would make Synapse's door module refuse every join on the server until
homeserver.yaml is edited), unless the admin asks for new ones with `--new-tokens`. Each run
says what changed and what must be updated and restarted because of it.
"""

from __future__ import annotations

import copy
import io
import os
import re
import secrets
import subprocess
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML

from guardbot.config import Config, ConfigError, create_from_example
from guardbot.core.observations import DOOR_CALLBACKS

# Tokens the homeserver and guardbot must agree on; `--new-tokens` replaces these.
TOKENS = ("appservice.as_token", "appservice.hs_token", "antispam.token")
# What each registration key follows in the config, to name the cause of a change.
REGISTRATION_KEYS = {
    "id": "appservice.id",
    "url": "appservice.address",
    "as_token": "appservice.as_token",
    "hs_token": "appservice.hs_token",
    "sender_localpart": "appservice.bot_username",
    "namespaces": "homeserver.domain / appservice.bot_username",
}


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


def door_module(config: Config, token: str) -> dict[str, Any]:
    """The `modules:` entry for homeserver.yaml that makes Synapse ask guardbot at the door.
    fail_open: an unreachable guardbot (or one that refuses the module's token) lets every
    join through, and the event path is the backstop; without it, either would refuse every
    join on the server."""
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


def fill_tokens(config: Config, *, renew: bool = False) -> list[str]:
    """Generate the tokens still missing ("generate"), or all of them with `renew`; the keys
    that changed."""
    changed = []
    for key in TOKENS:
        if renew or config.get(key, "generate") in ("generate", "", None):
            config[key] = secrets.token_urlsafe(48)
            changed.append(key)
    # Never renewed here: named guests' passwords derive from it, so replacing it is a
    # rotation the admin does on purpose (pwlu.previous_secrets).
    if config.get("pwlu.secret", "generate") == "generate":
        config["pwlu.secret"] = secrets.token_urlsafe(48)
        changed.append("pwlu.secret")
    return changed


def dump_yaml(data: dict[str, Any]) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def read(path: str) -> dict[str, Any] | None:
    """The registration at `path` as it stands; None if there is none (or not a mapping)."""
    try:
        with open(path) as stream:
            data = YAML(typ="safe").load(stream)
    except Exception:  # unreadable or not YAML: nothing to compare with
        return None
    return data if isinstance(data, dict) else None


def changed_keys(old: dict[str, Any] | None, new: dict[str, Any]) -> list[str]:
    """Which registration keys differ (every key when there was none)."""
    if old is None:
        return list(new)
    return [key for key in new if old.get(key) != new[key]]


def tracked_by_git(path: str) -> bool:
    """A file of a git checkout (the repository's example registration.yaml): tokens written
    there would end up in a commit."""
    directory, name = os.path.split(os.path.abspath(path))
    try:
        done = subprocess.run(
            ["git", "-C", directory, "ls-files", "--error-unmatch", "--", name],
            capture_output=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def write(registration: dict[str, Any], path: str) -> None:
    """A new file is readable by its owner and group only (it holds as_token, an admin's
    credential once guardbot is a server admin): give the group to the homeserver's user. An
    existing file is rewritten in place, so it keeps the owner, group and mode the admin gave
    it for the homeserver to read (a new file in its place would not: the homeserver would
    fail to start)."""
    text = dump_yaml(registration)
    try:
        stream = open(path, "r+")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        stream = os.fdopen(fd, "w")
    with stream:
        stream.seek(0)
        stream.write(text)
        stream.truncate()
        stream.flush()
        os.fsync(stream.fileno())


@dataclass
class Changes:
    """What one `-g` run changed, to tell the admin what follows from it."""

    config_created: bool = False
    tokens: list[str] = field(default_factory=list)  # config keys given a new value
    registration: list[str] = field(default_factory=list)  # registration keys that differ
    registration_existed: bool = True

    def next_steps(self, config_path: str, registration_path: str) -> list[str]:
        reg = os.path.abspath(registration_path)
        steps = []
        if "antispam.token" in self.tokens and not self.config_created:
            steps.append(
                "The door: put the new antispam.token from"
                f" {os.path.abspath(config_path)} into homeserver.yaml's synapse_http_antispam"
                " entry (authorization). Until you do, the module's calls are refused and,"
                " with fail_open, every join goes through unchecked by the door."
            )
        if not self.registration_existed:
            steps.append(
                f"Add {reg} to app_service_config_files in homeserver.yaml and restart the"
                " homeserver."
            )
        elif self.registration:
            steps.append(f"Restart the homeserver: it reads {reg} only when it starts.")
        if self.tokens or self.registration:
            steps.append(f"Start (or restart) guardbot: guardbot -c {config_path}")
        return steps


def generate(path: str, reg_path: str, *, renew: bool = False) -> None:
    """`guardbot -c <path> -g -r <reg_path> [--new-tokens]`; ConfigError if it cannot."""
    if tracked_by_git(reg_path):
        raise ConfigError(
            f"{reg_path}: this file belongs to the git checkout (the repository's example);"
            " guardbot will not write tokens into it. Write yours where guardbot keeps its"
            " data, e.g. -r /var/lib/guardbot/registration.yaml"
        )
    changes = Changes(config_created=not os.path.exists(path))
    if changes.config_created:
        create_from_example(path)
        print(f"Created {path} from the example config.")
    config = Config(path)
    config.load()
    config.check_unknown_keys()
    config.update(save=False)
    changes.tokens = fill_tokens(config, renew=renew)
    # Check everything (environment included) before touching the file: new tokens in the
    # config but not in a registration would lock guardbot out of the homeserver.
    effective = Config(path)
    effective._data = copy.deepcopy(config._data)
    effective.apply_env()
    effective.validate()
    example = Config(path).load_base()
    essentials = ("homeserver.address", "homeserver.domain", "appservice.address")
    if example and all(effective[k] == example[k] for k in essentials):
        # Still the example's: a registration for example.org is not worth installing.
        if changes.tokens:
            config.save()
        print(
            f"Next: edit {path}: at least {', '.join(essentials)} and database (or set"
            " them as GUARDBOT_* variables), then run this command again; it writes the"
            f" registration to {reg_path}."
        )
        return
    new = build(effective)
    old = read(reg_path)
    changes.registration_existed = old is not None
    changes.registration = changed_keys(old, new)
    # The registration first: if it cannot be written, the config keeps the tokens it has.
    if changes.registration:
        write(new, reg_path)
    if changes.tokens:
        config.save()
    _say_what_changed(path, reg_path, changes, effective)


def _say_what_changed(path: str, reg_path: str, changes: Changes, effective: Config) -> None:
    if changes.tokens:
        print(f"New in {path}: {', '.join(changes.tokens)} (kept out of this output).")
    else:
        print(f"Kept every token in {path} (guardbot -g --new-tokens makes new ones).")
    if not changes.registration:
        print(f"{reg_path}: unchanged.")
    elif changes.registration_existed:
        causes = sorted({REGISTRATION_KEYS.get(k, k) for k in changes.registration})
        print(f"Rewrote {reg_path}: it follows {', '.join(causes)}, which changed.")
    else:
        print(f"Wrote {reg_path}.")
    steps = changes.next_steps(path, reg_path)
    if not steps:
        print("Nothing changed: nothing to update or restart.")
    if steps:
        print("Next:\n" + "\n".join(f"  {n}. {step}" for n, step in enumerate(steps, 1)))
    if "antispam.token" in changes.tokens or not changes.registration_existed:
        hidden = f"<antispam.token from {os.path.abspath(path)}>"
        print(
            "\nThe door (recommended): install synapse-http-antispam where Synapse runs"
            " (pip install synapse-http-antispam) and add to homeserver.yaml:\n"
            + dump_yaml({"modules": [door_module(effective, hidden)]})
            + "(authorization: the antispam.token in the config, kept out of this output)"
        )
