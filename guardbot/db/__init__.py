"""guardbot's database: one store per table group; schema steps in upgrade/."""

from __future__ import annotations

from typing import Any

from mautrix.util.async_db import Database

from guardbot.db.auditlog import AuditEntry, AuditStore
from guardbot.db.inbox import InboxRow, InboxStore
from guardbot.db.listing import RoomStore
from guardbot.db.queue import ActionStore, QueuedAction
from guardbot.db.room_settings import SettingsStore
from guardbot.db.upgrade import upgrade_table


def create(url: str) -> Database:
    # mautrix spells the SQLite scheme "sqlite:"; accept "sqlite:///path" too.
    if url.startswith("sqlite:///"):
        url = "sqlite:" + url.removeprefix("sqlite:///")
    args: dict[str, Any] = {"min_size": 1}
    if not url.startswith("sqlite:"):
        # mautrix exits the process on an asyncpg internal client error, which a PostgreSQL
        # restart can cause; the failed operation is retried like any other, and the pool
        # drops a connection it cannot reset.
        args["meow_exit_on_ice"] = False
    return Database.create(url, upgrade_table=upgrade_table, db_args=args)


__all__ = [
    "ActionStore",
    "AuditEntry",
    "AuditStore",
    "SettingsStore",
    "Database",
    "InboxRow",
    "InboxStore",
    "QueuedAction",
    "RoomStore",
    "create",
]
