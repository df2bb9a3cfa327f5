"""guardbot's database: one store per table group, schema steps in upgrade/.

Stores run SQL and nothing else: they take and return the core's values (observations,
actions, decisions, records). A store called inside another's transaction shares it (mautrix
keeps the connection in a context variable), so DecisionStore.settle is one transaction.
"""

from __future__ import annotations

from typing import Any

from mautrix.util.async_db import Database

from guardbot.db.action_store import ActionStore, QueuedAction
from guardbot.db.audit_store import AuditStore
from guardbot.db.decision_store import DecisionStore
from guardbot.db.inbox_store import InboxRow, InboxStore
from guardbot.db.room_store import RoomStore
from guardbot.db.settings_store import SettingsStore
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
    "AuditStore",
    "Database",
    "DecisionStore",
    "InboxRow",
    "InboxStore",
    "QueuedAction",
    "RoomStore",
    "SettingsStore",
    "create",
]
