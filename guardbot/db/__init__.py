"""guardbot's database: one store per table group; schema steps in upgrade/."""

from __future__ import annotations

from mautrix.util.async_db import Database

from .actions import ActionStore, QueuedAction
from .audit import AuditEntry, AuditStore
from .inbox import InboxRow, InboxStore
from .rooms import RoomStore
from .settings import SettingsStore
from .upgrade import upgrade_table


def create(url: str) -> Database:
    # mautrix spells the SQLite scheme "sqlite:"; accept "sqlite:///path" too.
    if url.startswith("sqlite:///"):
        url = "sqlite:" + url.removeprefix("sqlite:///")
    return Database.create(url, upgrade_table=upgrade_table, db_args={"min_size": 1})


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
