"""guardbot.logs: the JSON formatter as the example config documents it, and secret redaction
on every handler, installed by Guardbot.prepare_log."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
from collections.abc import Iterator
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from guardbot import logs
from guardbot.app import Guardbot
from guardbot.config import load

EXAMPLE = resources.files("guardbot").joinpath("example-config.yaml").read_text()
AS_TOKEN = "as-Secret-0123456789abcdef"
HS_TOKEN = "hs-Secret-fedcba9876543210"
DB_PASSWORD = "p@ss/w0rd"  # percent-encoded in the URL
DB_URL = "postgres://guardbot:p%40ss%2Fw0rd@db.example.org/guardbot"


@pytest.fixture
def isolated_logging() -> Iterator[None]:
    """dictConfig changes the whole process; put every logger back afterwards."""
    manager = logging.Logger.manager
    saved = {
        name: (lg.handlers[:], lg.level, lg.disabled, lg.propagate, lg.filters[:])
        for name, lg in [("", logging.getLogger()), *manager.loggerDict.items()]
        if isinstance(lg, logging.Logger)
    }
    last_resort_filters = logging.lastResort.filters[:] if logging.lastResort else []
    yield
    for name, lg in list(manager.loggerDict.items()):
        if isinstance(lg, logging.Logger) and name not in saved:
            lg.handlers, lg.disabled = [], False
    for name, (handlers, level, disabled, propagate, filters) in saved.items():
        lg = logging.getLogger(name or None)
        lg.handlers, lg.level, lg.disabled, lg.propagate, lg.filters = (
            handlers,
            level,
            disabled,
            propagate,
            filters,
        )
    if logging.lastResort:
        logging.lastResort.filters = last_resort_filters


def documented_json_logging() -> dict[str, Any]:
    """The example config's logging section with its commented JSON example switched on."""
    yaml = YAML(typ="safe")
    config = yaml.load(EXAMPLE)["logging"]
    block = re.search(r"guardbot's formatter.*?\n((?:#    .*\n)+)", EXAMPLE)
    assert block, "the example config no longer documents the JSON formatter"
    snippet = yaml.load("".join(line[1:] + "\n" for line in block.group(1).splitlines()))
    config.update(snippet)
    return config


def capture(handler_name: str = "console") -> io.StringIO:
    buffer = io.StringIO()
    for handler in logs.all_handlers():
        if handler.get_name() == handler_name:
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(buffer)
            return buffer
    raise AssertionError(f"no handler named {handler_name}")


def test_documented_json_formatter_writes_one_object_per_line(isolated_logging: None) -> None:
    logging.config.dictConfig(documented_json_logging())
    out = capture()
    log = logging.getLogger("guardbot.test")
    log.info("kicked %s from %s", "@12:example.org", "!room:example.org", extra={"room": "!r"})
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("it broke")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    first, second = (json.loads(line) for line in lines)
    assert first["message"] == "kicked @12:example.org from !room:example.org"
    assert (first["level"], first["logger"], first["room"]) == ("INFO", "guardbot.test", "!r")
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert "exception" not in first
    assert second["level"] == "ERROR"
    assert "RuntimeError: boom" in second["exception"]


def test_json_formatter_survives_values_json_cannot_encode() -> None:
    record = logging.makeLogRecord({"msg": "x", "levelname": "INFO", "thing": object()})
    assert json.loads(logs.JsonFormatter().format(record))["thing"].startswith("<object")


def write_config(tmp_path: Path, database: str = DB_URL) -> Path:
    text = (
        EXAMPLE.replace("as_token: generate", f"as_token: {AS_TOKEN}")
        .replace("hs_token: generate", f"hs_token: {HS_TOKEN}")
        .replace("database: sqlite:guardbot.db", f"database: {database}")
    )
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_secrets_of_a_config(tmp_path: Path) -> None:
    config = load(str(write_config(tmp_path)), save=False, environ={})
    found = set(logs.secrets_of(config))
    assert {AS_TOKEN, HS_TOKEN, DB_PASSWORD, "p%40ss%2Fw0rd"} <= found
    # The placeholder of an unconfigured example is a word, not a secret.
    assert "generate" not in logs.secrets_of({"appservice.as_token": "generate"})
    assert logs.secrets_of({"database": "sqlite:guardbot.db"}) == []
    pwlu = {"pwlu.secret": "current-pwlu", "pwlu.previous_secrets": ["old-pwlu", "older-pwlu"]}
    assert set(logs.secrets_of(pwlu)) == {"current-pwlu", "old-pwlu", "older-pwlu"}


@pytest.mark.parametrize("formatter", ["normal", "json"])
def test_prepare_log_redacts_every_handler(
    tmp_path: Path, isolated_logging: None, formatter: str
) -> None:
    path = write_config(tmp_path)
    bot = Guardbot()
    bot.config = load(str(path), save=False, environ={})
    logging_config = documented_json_logging() if formatter == "json" else None
    if logging_config:
        bot.config["logging"] = logging_config
    # A second handler, to show the filter is on each one and not only the first.
    bot.config["logging"]["handlers"]["second"] = {
        "class": "logging.StreamHandler",
        "formatter": formatter,
    }
    bot.config["logging"]["root"]["handlers"] = ["console", "second"]
    bot.prepare_log()
    outputs = [capture("console"), capture("second")]
    log = logging.getLogger("guardbot.anything")
    log.warning("token in the message: %s", AS_TOKEN)
    log.warning("in the format string itself " + HS_TOKEN)
    log.warning("url %s", f"postgres://guardbot:{DB_PASSWORD}@db/guardbot")
    log.warning("extra field", extra={"authorization": f"Bearer {AS_TOKEN}"})
    try:
        raise ValueError(f"cannot connect with {DB_URL}")
    except ValueError:
        log.exception("with a traceback")
    for out in outputs:
        text = out.getvalue()
        # message, format string, URL, traceback (+ the extra field, which only JSON shows)
        assert text.count(logs.REDACTED) >= (5 if formatter == "json" else 4), text
        for secret in (AS_TOKEN, HS_TOKEN, DB_PASSWORD, "p%40ss%2Fw0rd"):
            assert secret not in text
        assert "token in the message" in text and "with a traceback" in text
        assert "ValueError: cannot connect with postgres://guardbot:" in text
        if formatter == "json":
            assert all(json.loads(line) for line in text.splitlines())


def test_filter_keeps_records_without_secrets_intact() -> None:
    redact = logs.RedactSecrets(["s3cret"])
    record = logging.makeLogRecord({"msg": "100%% of %d", "args": (3,)})
    assert redact.filter(record)
    assert record.getMessage() == "100% of 3"
    empty = logs.RedactSecrets([])
    record = logging.makeLogRecord({"msg": "%s", "args": ("s3cret",)})
    assert empty.filter(record) and record.getMessage() == "s3cret"
