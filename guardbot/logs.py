"""Logging helpers: a JSON formatter for the config's `logging` section, and secret redaction.

Use the formatter from the config file like any other:

    formatters:
        json:
            "()": guardbot.logs.JsonFormatter

Redaction is not optional and not configured: `install_redaction` puts a filter on every handler,
so a token or password that ends up in a message, its arguments, a traceback or an `extra` field
is replaced before any handler writes it, whichever formatter it uses.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from yarl import URL

REDACTED = "<redacted>"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, and the record's
    `extra` fields; `exception` and `stack` when there are any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in _extras(record).items():
            entry.setdefault(key, value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an `extra` value that JSON cannot encode still gets logged, as text.
        return json.dumps(entry, ensure_ascii=False, default=str)


def secrets_of(config: Any) -> list[str]:
    """The values in a guardbot config that must never be written to a log."""
    found: list[str] = []
    keys = (
        "appservice.as_token",
        "appservice.hs_token",
        "antispam.token",
        "pwlu.secret",
        "pwlu.previous_secrets",
    )
    for key in keys:
        try:
            value = config[key]
        except (KeyError, TypeError, AttributeError):
            continue
        # Old PWLU secrets still derive the passwords of accounts made with them.
        for item in value if isinstance(value, list) else [value]:
            # "generate" is the example config's placeholder, not a secret (and a common word).
            if isinstance(item, str) and item and item != "generate":
                found.append(item)
    try:
        database = config["database"]
    except (KeyError, TypeError, AttributeError):
        database = None
    if isinstance(database, str):
        found += database_password(database)
    return found


def redact_url(url: str) -> str:
    """A URL fit to show: its password, if any, replaced."""
    try:
        parsed = URL(url)
    except ValueError:
        return "<unparseable URL>"
    return str(parsed.with_password("***")) if parsed.password else url


def database_password(url: str) -> list[str]:
    """A database URL's password, as written in the URL (percent-encoded) and decoded."""
    try:
        parsed = URL(url)
    except (ValueError, TypeError):
        return []
    return [p for p in {parsed.raw_password, parsed.password} if p]


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
        return text


class RedactSecrets(logging.Filter):
    """Replaces known secrets in a record before a handler formats it. Never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.redact.secrets or getattr(record, "_guardbot_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # let the handler report a broken format string as it always does
            return True
        # The message is rendered once, here: a secret may sit in the arguments.
        record.msg, record.args = self.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in _extras(record).items():
            if isinstance(value, str):
                setattr(record, key, self.redact(value))
        record._guardbot_redacted = True  # one record passes every handler's filter
        return True


def all_handlers() -> list[logging.Handler]:
    handlers: list[logging.Handler] = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers += logger.handlers
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    return list(dict.fromkeys(handlers))


def install_redaction(secrets: Iterable[str]) -> RedactSecrets:
    """Put one redaction filter on every handler that exists now (call after dictConfig)."""
    redact = RedactSecrets(secrets)
    for handler in all_handlers():
        for old in [f for f in handler.filters if isinstance(f, RedactSecrets)]:
            handler.removeFilter(old)
        handler.addFilter(redact)
    return redact
