"""guardbot's config file: mautrix's example-config merge, environment overrides, validation.

A user mistake must end in one line naming the key, so every check here raises ConfigError with
the dotted key path first.
"""

from __future__ import annotations

import copy
import difflib
import ipaddress
import os
import pathlib
import re
from collections.abc import Callable, Iterator
from typing import Any

from mautrix.util.config import BaseFileConfig, ConfigUpdateHelper, RecursiveDict
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from yarl import URL

from guardbot.core.expiry_rules import ExpiryRules
from guardbot.core.policy import Policy, ServerPolicy
from guardbot.core.reminder_text import NAG_PLACEHOLDERS

ENV_PREFIX = "GUARDBOT_"
# GUARDBOT_* variables that belong to the tooling around guardbot, not to its config.
NOT_CONFIG = (
    "GUARDBOT_TEST",
    "GUARDBOT_DATA_DIR",
    "GUARDBOT_REGISTRATION_PATH",  # the container entrypoint's, not a config key
    "GUARDBOT_FAULT",
    "GUARDBOT_BENCH",
)
BASE_CONFIG = "pkg://guardbot/example-config.yaml"
# Keys whose children are the user's own names, not keys guardbot knows.
FREE_FORM = ("logging", "policy.rooms")
_yaml = YAML(typ="safe")


class ConfigError(ValueError):
    """A config value a person must fix; str() is the one line to show them."""


def _leaves(data: Any, prefix: str = "") -> Iterator[str]:
    if isinstance(data, dict) and not any(prefix == f for f in FREE_FORM):
        for key, value in data.items():
            yield from _leaves(value, f"{prefix}.{key}" if prefix else str(key))
    elif prefix:
        yield prefix


class Config(BaseFileConfig):
    def __init__(self, path: str, base_path: str = BASE_CONFIG) -> None:
        super().__init__(path, base_path)

    # -- loading ---------------------------------------------------------------------------
    def check_unknown_keys(self) -> None:
        """The mautrix merge drops keys it does not know; a typo must not vanish silently."""
        base = self.load_base()
        known = set(_leaves(base._data)) if base else set()
        parents = {k.rsplit(".", 1)[0] for k in known if "." in k} | set(FREE_FORM)
        for key in _leaves(self._data):
            if key in parents:  # a section: "policy.rooms: null" is fine, "homeserver: 5" is not
                value = self.get(key, None)
                if value is None and key not in FREE_FORM:
                    self[key] = CommentedMap()  # all its lines commented out: the defaults
                elif value is not None and not isinstance(value, dict):
                    raise ConfigError(f"{key}: must be a mapping of settings, not {value!r}")
                continue
            if key in known or any(key.startswith(f + ".") for f in FREE_FORM):
                continue
            raise ConfigError(f"{key}: unknown config key{_did_you_mean(key, known)}")

    def do_update(self, helper: ConfigUpdateHelper) -> None:
        copy, copy_dict, _ = helper
        base = self.load_base()
        for key in _leaves(base._data if base else {}):
            if key.startswith("logging"):
                continue
            copy(key)
        copy_dict("policy.rooms")
        copy_dict("logging")

    def apply_env(self, environ: dict[str, str] | None = None) -> None:
        """GUARDBOT_A__B_C=value sets a.b_c, read as a YAML scalar."""
        environ = os.environ if environ is None else environ
        base = self.load_base()
        known = set(_leaves(base._data)) if base else set()
        for name, raw in environ.items():
            if not name.startswith(ENV_PREFIX) or name.startswith(NOT_CONFIG):
                continue
            if name.endswith("_FILE"):
                # GUARDBOT_DATABASE_FILE=/run/secrets/db: the value is that file's content, so
                # a secret stays out of the environment (docker inspect, compose config).
                try:
                    raw = pathlib.Path(raw).read_text().strip()
                except OSError as e:
                    key = ".".join(p.lower() for p in name[len(ENV_PREFIX) : -5].split("__"))
                    raise ConfigError(f"{key}: {name}: cannot read {raw} ({e.strerror})") from None
                name = name[: -len("_FILE")]
            key = ".".join(p.lower() for p in name[len(ENV_PREFIX) :].split("__"))
            if key not in known and not any(key.startswith(f + ".") for f in FREE_FORM):
                hint = _did_you_mean(key, known)
                raise ConfigError(f"{key}: {name} is not a config key{hint}")
            try:
                # Matrix IDs (!room, @user, #alias) are strings; YAML would read a tag or comment.
                value = raw if raw[:1] in "!@#" else _yaml.load(raw) if raw.strip() else ""
            except Exception as e:
                first = str(e).splitlines()[0] if str(e) else type(e).__name__
                raise ConfigError(f"{key}: {name} is not a valid value ({first})") from None
            try:
                self[key] = value
            except (TypeError, KeyError, AttributeError):
                raise ConfigError(f"{key}: {name} names a key inside a plain value") from None

    # -- access ----------------------------------------------------------------------------
    @property
    def bot_user_id(self) -> str:
        return f"@{self['appservice.bot_username']}:{self['homeserver.domain']}"

    # -- validation ------------------------------------------------------------------------
    def server_policy(self) -> ServerPolicy:
        """The server admin's policy choices, as the core reads them."""
        return ServerPolicy(
            default=Policy(self["policy.listed_rooms"]),
            rooms={r: Policy(p) for r, p in (self["policy.rooms"] or {}).items()},
            room_admins_may=tuple(self["policy.room_admins_may"]),
            kick_reason=self["policy.kick_reason"],
            restore_notice=self["policy.restore_notice"],
            dry_run=bool(self["policy.dry_run"]),
            auto_join=bool(self["bot.auto_join_listed_rooms"]),
        )

    @property
    def link_only(self) -> bool:
        """policy.named_guests: link_only: a named guest without a password counts as a guest
        (kept out of listed rooms, joins rooms by link only)."""
        return self["policy.named_guests"] == "link_only"

    def expiry_rules(self) -> ExpiryRules:
        """The server admin's expiry choices, as the core reads them (durations in ms)."""

        def ms(key: str) -> int:
            return int(parse_duration(self[key]) * 1000)

        return ExpiryRules(
            enabled=bool(self["expiry.enabled"]),
            dry_run=bool(self["expiry.dry_run"]),
            guests_idle=ms("expiry.guests_idle"),
            named_guests_idle=ms("expiry.named_guests_idle"),
            suspended_for=ms("expiry.suspended_for"),
            erase=bool(self["expiry.erase"]),
            exempt=frozenset([*self["bot.exempt_users"], self.bot_user_id]),
        )

    def validate(self) -> None:
        for key, check in _CHECKS.items():
            try:
                value = self[key]
            except KeyError:
                value = None
            if value is None:
                raise ConfigError(f"{key}: missing")
            problem = check(value)
            if problem:
                raise ConfigError(f"{key}: {problem}")
        for room_id, policy in (self["policy.rooms"] or {}).items():
            if not str(room_id).startswith("!"):
                raise ConfigError(f"policy.rooms.{room_id}: not a room ID (they start with !)")
            if policy not in Policy.values():
                raise ConfigError(f"policy.rooms.{room_id}: {policy!r} is not one of {_choices()}")
        self._validate_pwlu()

    def _validate_pwlu(self) -> None:
        """Keys that only matter when named guests are on: a disabled feature needs no secret."""
        if not self["pwlu.enabled"]:
            return
        secret = self["pwlu.secret"]
        if secret == "generate":
            raise ConfigError("pwlu.secret: not generated yet: run `guardbot -c <config> -g`")
        if len(secret) < 32:
            raise ConfigError("pwlu.secret: too short; use at least 32 random characters")
        problem = _url(self["pwlu.public_url"])
        if problem:
            raise ConfigError(f"pwlu.public_url: {problem} (where people reach /_guardbot/)")


def _did_you_mean(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    return f" (did you mean {close[0]}?)" if close else ""


def _choices() -> str:
    return ", ".join(Policy.values())


def _url(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a URL like http://localhost:8008"
    try:
        url = URL(value)
    except ValueError:
        return f"{value!r} is not a valid URL"
    if url.scheme not in ("http", "https") or not url.host:
        return f"{value!r} is not an http(s) URL"
    return None


def _token(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "must be a non-empty string"
    if value == "generate":
        return "not generated yet: run `guardbot -c <config> -g -r registration.yaml`"
    return None


def _door_token(value: Any) -> str | None:
    """Like the appservice tokens, but "generate" is allowed: the door is simply not set up."""
    return None if value == "generate" else _token(value)


def _one_of(*choices: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value in choices else f"{value!r} is not one of {', '.join(choices)}"

    return check


def _typed(kind: type | tuple[type, ...], what: str) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) and kind is not bool:
            return f"must be {what}"
        return None if isinstance(value, kind) else f"must be {what}"

    return check


def _port(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        return "must be a port number between 1 and 65535"
    return None


def _positive(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        return "must be a positive number"
    return None


def _lease(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 1 <= value <= 600:
        return "must be a number of seconds from 1 to 600"
    return None


def _not_negative(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        return "must be a number of seconds, 0 or more"
    return None


def _localpart(value: Any) -> str | None:
    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9._=/+-]+", value):
        return "must be a user ID localpart (lowercase letters, digits, ._=/+-)"
    return None


def _database(value: Any) -> str | None:
    if not isinstance(value, str) or not re.match(r"(sqlite|sqlite3|postgres|postgresql):", value):
        return "must start with sqlite: or postgres://"
    return None


def _policy(value: Any) -> str | None:
    return None if value in Policy.values() else f"{value!r} is not one of {_choices()}"


def _policy_list(value: Any) -> str | None:
    if not isinstance(value, list) or any(v not in Policy.values() for v in value):
        return f"must be a list of policies from {_choices()}"
    return None


def _user_type(value: Any) -> str | None:
    if value == "" or (isinstance(value, str) and re.fullmatch(r"[a-z0-9._-]{1,64}", value)):
        return None
    return "must be empty (off) or a user type like named_guest (a-z, 0-9, . _ -)"


def _rooms_or_aliases(value: Any) -> str | None:
    def room(v: Any) -> bool:  # room IDs of version 12 carry no server name; aliases do
        ok = isinstance(v, str) and len(v) > 1 and " " not in v
        return ok and (v[0] == "!" or (v[0] == "#" and ":" in v))

    ok = isinstance(value, list) and all(room(v) for v in value)
    return None if ok else "must be a list of room IDs (!room) or aliases (#name:server)"


def _room_or_empty(value: Any) -> str | None:
    if value == "" or (isinstance(value, str) and value.startswith("!") and " " not in value):
        return None
    return "must be a room ID (it starts with !), or empty"


def _host_port(value: Any) -> str | None:
    if isinstance(value, str):
        host, _, port = value.rpartition(":")
        if host and port.isdigit() and 0 < int(port) < 65536:
            return None
    return "must be host:port, e.g. 127.0.0.1:9090"


def _user_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(
        isinstance(u, str) and u.startswith("@") and ":" in u for u in value
    ):
        return "must be a list of user IDs like @alice:example.org"
    return None


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: Any) -> float:
    """Seconds in "90s", "10m", "3d", "1h30m" or a plain number of seconds; ValueError if not."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and value.strip():
        text = value.strip().lower()
        parts = list(_DURATION.finditer(text))
        if not parts or "".join(p.group(0) for p in parts) != text.replace(" ", ""):
            raise ValueError(value)
        seconds = sum(float(p.group(1)) * _UNIT_SECONDS[p.group(2)] for p in parts)
    else:
        raise ValueError(value)
    if seconds <= 0:
        raise ValueError(value)
    return seconds


def _duration(value: Any) -> str | None:
    try:
        parse_duration(value)
    except ValueError:
        return f"{value!r} is not a duration like 90s, 10m, 12h or 3d"
    return None


def _string_list(value: Any) -> str | None:
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        return "must be a list of strings"
    return None


def _networks(value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list of addresses or CIDR ranges, like [10.0.0.0/8, ::1]"
    for item in value:
        try:
            ipaddress.ip_network(str(item), strict=False)
        except ValueError:
            return f"{item!r} is not an address or CIDR range"
    return None


def _count(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be a whole number, 0 or more"
    return None


def _nag_template(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return "must be a non-empty string"
    unknown = sorted(set(re.findall(r"\{(\w+)\}", value)) - set(NAG_PLACEHOLDERS))
    if unknown:
        known = ", ".join("{" + p + "}" for p in NAG_PLACEHOLDERS)
        return f"unknown placeholder {{{unknown[0]}}} (known: {known})"
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "homeserver.address": _url,
    "homeserver.domain": _typed(str, "the server name, e.g. example.org"),
    "appservice.address": _url,
    "appservice.hostname": _typed(str, "a host name or IP address to listen on"),
    "appservice.port": _port,
    "appservice.id": _typed(str, "a string"),
    "appservice.bot_username": _localpart,
    "appservice.as_token": _token,
    "appservice.hs_token": _token,
    "appservice.max_body_size": _positive,
    "antispam.token": _door_token,
    "antispam.timeout": _positive,
    "antispam.refusal": _typed(str, "a string"),
    "antispam.account_hint": _typed(str, "a string"),
    "database": _database,
    "leader.lease": _lease,
    "directory.poll_interval": _positive,
    "directory.page_size": _positive,
    "directory.recheck_every": _not_negative,
    "policy.listed_rooms": _policy,
    "policy.rooms": _typed(dict, "a map of room ID to forbid, kick or off"),
    "policy.kick_reason": _typed(str, "a string"),
    "policy.restore_notice": _typed(str, "a string"),
    "policy.room_admins_may": _policy_list,
    "policy.dry_run": _typed(bool, "true or false"),
    "policy.guest_free_rooms": _rooms_or_aliases,
    "policy.named_guests": _one_of("allow", "link_only"),
    "pwlu.user_type": _user_type,
    "expiry.enabled": _typed(bool, "true or false"),
    "expiry.dry_run": _typed(bool, "true or false"),
    "expiry.guests_idle": _duration,
    "expiry.named_guests_idle": _duration,
    "expiry.suspended_for": _duration,
    "expiry.erase": _typed(bool, "true or false"),
    "expiry.check_every": _duration,
    "management_room": _room_or_empty,
    "metrics.enabled": _typed(bool, "true or false"),
    "metrics.listen_address": _host_port,
    "bot.auto_join_listed_rooms": _typed(bool, "true or false"),
    "bot.exempt_users": _user_list,
    "bot.admin_recheck": _positive,
    "pwlu.enabled": _typed(bool, "true or false"),
    "pwlu.secret": _typed(str, "a string (guardbot -g generates it)"),
    "pwlu.previous_secrets": _string_list,
    "pwlu.public_url": _typed(str, "a URL like https://matrix.example.org"),
    "pwlu.claim_token_ttl": _duration,
    "pwlu.min_password_length": _count,
    "pwlu.trusted_proxies": _networks,
    "pwlu.rate_limit.per_second": _positive,
    "pwlu.rate_limit.burst_count": _positive,
    "pwlu.nag.first_after": _duration,
    "pwlu.nag.every": _duration,
    "pwlu.nag.max": _count,
    "pwlu.nag.template": _nag_template,
    "pwlu.nag.html_template": _nag_template,
    "logging": _typed(dict, "a Python logging dictConfig mapping"),
}


def create_from_example(path: str) -> None:
    """A missing config file starts as a copy of the example, comments and all."""
    base = Config(path).load_base()
    assert base is not None
    tmp = Config(path)
    tmp._data = base._data if isinstance(base._data, CommentedMap) else CommentedMap(base._data)
    tmp.save()
    if not os.path.exists(path):
        raise ConfigError(f"{path}: could not create the config file here")


def from_values(values: dict[str, Any]) -> Config:
    """The example's config with these keys set, checked like a file's: what tests and the
    benchmarks wire guardbot with."""
    config = Config("")
    base = config.load_base()
    assert base is not None
    config._data = copy.deepcopy(base._data)
    for key, value in values.items():
        config[key] = value
    config.check_unknown_keys()
    return config


def load(path: str, *, save: bool = False, environ: dict[str, str] | None = None) -> Config:
    """Load, merge with the example, apply the environment and validate; ConfigError on a fault.
    The file is left as the operator wrote it: a key they deleted takes its default in memory
    and is not written back (only `guardbot -g` writes the config: the tokens)."""
    config = Config(path)
    try:
        config.load()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file (guardbot -g creates one)") from None
    except Exception as e:
        raise ConfigError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(config._data, dict):
        raise ConfigError(f"{path}: the config file must be a YAML mapping")
    config.check_unknown_keys()
    config.update(save=save)
    config.apply_env(environ)
    config.validate()
    return config


__all__ = ["Config", "ConfigError", "RecursiveDict", "create_from_example", "from_values", "load"]
