"""The PostgreSQL server the database tests also run on: GUARDBOT_TEST_POSTGRES, a server URL
(tests make a throwaway database on it and drop it); empty or unset, they use SQLite only."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from yarl import URL

POSTGRES = os.environ.get("GUARDBOT_TEST_POSTGRES")


def local_cluster(url: str | None) -> tuple[str, str] | str:
    """(version, name) of the local cluster serving `url`, which this user may restart; or why
    not (a reason to skip)."""
    if not url:
        return "GUARDBOT_TEST_POSTGRES is not set"
    if not shutil.which("pg_ctlcluster") or not shutil.which("pg_lsclusters"):
        return "pg_ctlcluster is not available (not a Debian-style PostgreSQL)"
    where = URL(url)
    if where.host not in ("127.0.0.1", "localhost", "::1"):
        return f"PostgreSQL at {where.host} is not on this machine"
    port = str(where.port or 5432)
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True)
    for line in listing.stdout.splitlines():
        version, name, cluster_port, status, owner, datadir, *_ = line.split()
        if cluster_port == port and status == "online":
            if os.geteuid() != 0 and os.stat(datadir).st_uid != os.geteuid():
                return f"not permitted to restart cluster {version}/{name} (owner {owner})"
            return version, name
    return f"no online local cluster on port {port}"


def restart_cluster(version: str, name: str) -> float:
    """Restart it (`pg_ctlcluster ... restart`); seconds it took. RuntimeError if it failed."""
    started = time.monotonic()
    done = subprocess.run(
        ["pg_ctlcluster", version, name, "restart"], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster {version} {name} restart failed: {done.stderr.strip()}")
    return time.monotonic() - started
