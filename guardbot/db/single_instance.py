"""SQLite serves one guardbot at a time: two processes on one file would both act (and both
think they are alone). The second one is refused at start with what to do instead."""

from __future__ import annotations

import fcntl
import os
from typing import IO

from mautrix.util.async_db import Database, Scheme


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
    return handle
