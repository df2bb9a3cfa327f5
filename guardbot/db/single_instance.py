"""SQLite serves one guardbot at a time: two processes on one file would both act (and both
think they are alone). The second one is refused at start with what to do instead. On
PostgreSQL several may start together (an active/standby set): their schema upgrades take
turns."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from typing import IO

import asyncpg
from mautrix.util.async_db import Database, Scheme

# pg_advisory_lock key for schema upgrades: "guardbot" in ASCII, as a number.
_UPGRADE_LOCK = int.from_bytes(b"guardbot", "big") >> 1


class InUse(Exception):
    """Another guardbot holds this SQLite database; str() names it."""


def lock(database: Database) -> IO[str] | None:
    """Hold `<database file>.lock` for as long as the returned file stays open (None: not
    SQLite, nothing to hold). The kernel drops the lock when the process dies, however."""
    if database.scheme != Scheme.SQLITE:
        return None
    path = f"{database.url.path}.lock"
    handle = open(path, "a+")  # noqa: SIM115 (kept open: the lock lives as long as it)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise InUse(
            f"{database.url.path} is in use by guardbot {holder}. SQLite serves one guardbot;"
            " for an active/standby pair use PostgreSQL"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    keep_private(database)  # only the holder makes or narrows the database file
    return handle


def keep_private(database: Database) -> None:
    """A SQLite database holds the audit log and who the named guests are: readable by
    guardbot's user only. A missing file is made so; one made readable by others (SQLite's
    default follows the umask) is narrowed. SQLite gives its -wal and -shm files the same
    mode as the database file."""
    if database.scheme != Scheme.SQLITE:
        return
    path = database.url.path
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm", f"{path}.lock"):
        with contextlib.suppress(FileNotFoundError):
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


@contextlib.asynccontextmanager
async def upgrades_in_turn(database: Database) -> AsyncIterator[None]:
    """Around Database.start(): two processes starting on a new PostgreSQL database would
    otherwise both create the tables, and one would fail half-way."""
    if database.scheme != Scheme.POSTGRES:
        yield
        return
    conn = await asyncpg.connect(str(database.url))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _UPGRADE_LOCK)
        yield
    finally:
        await conn.close()  # the session ends: the lock goes with it
