"""`python -m bench [names...] [--quick] [--postgres URL] [--json PATH]`: run the benchmarks and
print one table (benchmark, figure, reference, ratio, goal, met?).

Names: intake, removal, directory, nags, ready, door, storm, crowd, reminders (default: all,
expiry, in that order), and soak (only when named).
--quick uses smaller sizes (a smoke run in a minute or two; its figures are not the recorded ones).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib
import json
import logging
import os
import platform
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from .common import Options, Row

BENCHMARKS = {
    "intake": "1. irrelevant events: transaction bytes → answered",
    "removal": "2. guest join → removal on a real Synapse",
    "directory": "3. directory scan and room sweep",
    "nags": "4. nag scheduler: work per due reminder, reminder lateness on a real Synapse",
    "ready": "5. memory and time to ready",
    "door": "6. the door: its decision time, a join on a real Synapse with and without it",
    "storm": "7. 1,000 guests in 10 kick rooms, Synapse alone and with workers; failover",
    "crowd": "8. a crowd picks names at once through guardbot, against Synapse's own /register",
    "reminders": "9. 1,000 reminders due at once on a real Synapse, against the calls alone",
    "expiry": "11. expiry: one pass over 100,000 accounts, nothing due and 1 % due",
    "soak": "10. overlapping faults: a seeded soak, one invariant checker (not in the default)",
}
# Run only when named: its full size takes half an hour per seed.
NOT_BY_DEFAULT = {"soak"}
HEADERS = ("benchmark", "figure", "reference", "ratio", "goal", "met?")


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}"
    )


def table(rows: list[Row]) -> str:
    cells = [HEADERS] + [
        (r.benchmark, r.figure, r.reference, r.ratio, r.goal, r.verdict) for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


async def run_all(names: list[str], opts: Options) -> list[Row]:
    rows: list[Row] = []
    for name in names:
        print(f"… {BENCHMARKS[name]}", file=sys.stderr, flush=True)
        started = time.monotonic()
        module = importlib.import_module(f"bench.{name}")
        run: Callable[[Options], Awaitable[list[Row]]] = module.run
        try:
            got = await run(opts)
        except Exception as e:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            got = [Row(name, f"failed: {type(e).__name__}: {e}"[:80], "", "", "", False)]
        rows += got
        print(f"  done in {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Run guardbot's benchmarks and print one table."
    )
    parser.add_argument(
        "names",
        nargs="*",
        metavar="name",
        help=f"benchmarks to run ({', '.join(BENCHMARKS)}); default all",
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a smoke run")
    parser.add_argument(
        "--postgres",
        default=os.environ.get("GUARDBOT_TEST_POSTGRES", ""),
        metavar="URL",
        help="PostgreSQL server for the database benchmarks (default $GUARDBOT_TEST_POSTGRES)",
    )
    parser.add_argument("--json", metavar="PATH", help="also write the rows as JSON here")
    args = parser.parse_args()
    # mautrix warns about statements over a second; the bulk inserts that set tables up are.
    logging.getLogger("mau").setLevel(logging.ERROR)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    names = args.names or [n for n in BENCHMARKS if n not in NOT_BY_DEFAULT]
    opts = Options(quick=args.quick, postgres=args.postgres)
    rows = asyncio.run(run_all(names, opts))
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sys.stderr.flush()
    print(f"\nguardbot benchmarks, {stamp}{' (quick)' if opts.quick else ''}\n{machine()}\n")
    print(table(rows))
    for note in opts.notes:
        print(f"  * {note}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "date": stamp,
                    "machine": machine(),
                    "quick": opts.quick,
                    "rows": [asdict(r) | {"met": r.met} for r in rows],
                    "notes": opts.notes,
                },
                f,
                indent=2,
            )
    # A missed goal is in the table, not the exit code: benchmarks are not a pass/fail gate.


if __name__ == "__main__":
    main()
