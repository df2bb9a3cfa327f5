"""`guardbot audit` (guardbot/tools/audit.py): the audit log as JSON lines, oldest first,
filtered by room, user and time, on the database the config names."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pytest

from guardbot import db
from guardbot.core.decision import AuditRecord
from guardbot.tools.audit import iso, main, parse_time
from tests.support.cli import edited, write

ROOM, OTHER = "!room:example.org", "!other:example.org"


def test_times_are_iso_or_unix_milliseconds() -> None:
    assert parse_time("1700000000000") == 1_700_000_000_000
    assert parse_time("2023-11-14T22:13:20") == 1_700_000_000_000  # UTC when no zone
    assert parse_time("2023-11-14T23:13:20+01:00") == 1_700_000_000_000
    assert iso(1_700_000_000_000) == "2023-11-14T22:13:20.000+00:00"
    with pytest.raises(argparse.ArgumentTypeError):
        parse_time("yesterday")


async def test_the_log_is_filtered_and_printed_as_json_lines(
    database_url: str, database: db.Database, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    audit = db.AuditStore(database)
    for at, room, user in (
        (1_000, ROOM, "@7:example.org"),
        (2_000, OTHER, "@8:example.org"),
        (3_000, ROOM, "@9:example.org"),
    ):
        await audit.add(AuditRecord(at, "guardbot", "Kick", room, user, "why", "done: removed"))
    await database.stop()
    config = write(tmp_path, edited(("database: sqlite:guardbot.db", f"database: {database_url}")))

    # Its own event loop, as from the command line.
    assert await asyncio.to_thread(main, ["-c", str(config), "--room", ROOM]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(e["room_id"], e["user_id"]) for e in lines] == [
        (ROOM, "@7:example.org"),
        (ROOM, "@9:example.org"),
    ]
    assert lines[0]["at"] == iso(1_000) and lines[0]["what"] == "Kick"
    between = ["-c", str(config), "--since", "1500", "--until", "2500"]
    assert await asyncio.to_thread(main, between) == 0
    (only,) = capsys.readouterr().out.splitlines()
    assert json.loads(only)["user_id"] == "@8:example.org"


def test_a_broken_config_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    config = write(tmp_path, edited(("    port: 29330", "    portt: 29330")))
    assert main(["-c", str(config)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("guardbot: appservice.portt:")
