"""What every benchmark shares: the result row, options, timing and memory helpers, and
throwaway databases (an SQLite file, or a database made and dropped on a PostgreSQL server)."""

from __future__ import annotations

import contextlib
import os
import pathlib
import secrets
import statistics
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from guardbot import db


@dataclass
class Row:
    benchmark: str
    figure: str  # what guardbot did, with its unit
    reference: str  # the same-run yardstick it is compared with
    ratio: str  # figure / reference, or "" when the two are not commensurable
    goal: str
    met: bool | None  # None: informational, no goal on this line

    @property
    def verdict(self) -> str:
        return "-" if self.met is None else "yes" if self.met else "NO"


@dataclass
class Options:
    quick: bool = False
    postgres: str = ""  # server URL; empty: SQLite only
    notes: list[str] = field(default_factory=list)  # printed under the table


def fmt_rate(per_s: float) -> str:
    return f"{per_s / 1000:,.0f}k ev/s" if per_s >= 10_000 else f"{per_s:,.0f} ev/s"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def percentile(values: list[float], p: float) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def best_of(repeats: int, fn: Callable[[], float]) -> float:
    """The fastest of a few runs: on a noisy machine the minimum is the least disturbed."""
    return min(fn() for _ in range(repeats))


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size (VmRSS) in MB, as the kernel counts it."""
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def pin_to_one_core() -> None:
    """Goals say "on one core": keep this process (and its threads) on one CPU."""
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def unpin() -> None:
    with contextlib.suppress(AttributeError, OSError):
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))


@contextlib.asynccontextmanager
async def database_url(kind: str, postgres: str) -> AsyncIterator[str]:
    """An empty database of `kind` ("sqlite" or "postgres") that exists only inside the block."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="guardbot-bench-") as tmp:
            yield f"sqlite:{tmp}/guardbot.db"
        return
    import asyncpg
    from yarl import URL

    name = "guardbot_bench_" + secrets.token_hex(6)
    admin = await asyncpg.connect(postgres)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield str(URL(postgres).with_path("/" + name))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def started_database(url: str) -> AsyncIterator[db.Database]:
    database = db.create(url)
    await database.start()
    try:
        yield database
    finally:
        await database.stop()


def database_kinds(opts: Options) -> list[str]:
    return ["sqlite", "postgres"] if opts.postgres else ["sqlite"]
