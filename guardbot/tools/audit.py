"""`guardbot audit -c config.yaml [--room R] [--user U] [--since T] [--until T]`: the audit log
as JSON lines, oldest first. Times are ISO 8601 (UTC if no zone) or Unix milliseconds."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime

from guardbot import db
from guardbot.config import ConfigError, load


def parse_time(value: str) -> int:
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO time or Unix ms") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


async def dump(args: argparse.Namespace) -> int:
    config = load(args.config, save=False)
    database = db.create(config["database"])
    try:
        await database.start()
    except Exception as e:
        print(f"guardbot: database: cannot open it ({str(e).splitlines()[0]})", file=sys.stderr)
        return 2
    try:
        entries = await db.AuditStore(database).find(
            room_id=args.room,
            user_id=args.user,
            since=args.since,
            until=args.until,
            limit=args.limit,
        )
    finally:
        await database.stop()
    for entry in entries:
        record = entry.as_dict()
        record["at"] = iso(entry.at)
        print(json.dumps(record, ensure_ascii=False))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="guardbot audit", description=__doc__)
    parser.add_argument("-c", "--config", default="config.yaml", metavar="<path>")
    parser.add_argument("--room", help="only this room ID")
    parser.add_argument("--user", help="only this user ID")
    parser.add_argument("--since", type=parse_time, help="from this time on")
    parser.add_argument("--until", type=parse_time, help="before this time")
    parser.add_argument("--limit", type=int, default=100_000)
    args = parser.parse_args(argv)
    try:
        return asyncio.run(dump(args))
    except ConfigError as e:
        print(f"guardbot: {e}", file=sys.stderr)
        return 2
