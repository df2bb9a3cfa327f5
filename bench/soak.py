"""10. Overlapping faults: the seeded soak (tests/support/soak.py) at its `full` size, several
seeds (GUARDBOT_SOAK_SEEDS, default 1,2,3), on PostgreSQL; --quick runs the ci size, seed 1.
Each seed's figures go under the table; its violations (goal 0) are the row."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tests.support.soak import soak

from .common import Options, Row


async def run(opts: Options) -> list[Row]:
    if not opts.postgres:
        return [
            Row("10 soak", "skipped: needs --postgres (a pair shares PostgreSQL)", "", "", "", None)
        ]
    size = "ci" if opts.quick else "full"
    seeds = (
        [1]
        if opts.quick
        else [int(s) for s in os.environ.get("GUARDBOT_SOAK_SEEDS", "1,2,3").split(",")]
    )
    rows = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix=f"soak-{seed}-") as tmp:
            report = await soak(seed, size, Path(tmp), opts.postgres)
        f = report.figures
        rows.append(
            Row(
                f"10 soak {size} seed {seed}",
                f"{len(report.violations)} violations, {f['actions_lost']} actions lost",
                f"{sum(f['faults'].values())} faults, {sum(f['operations'].values())} operations",
                "",
                "0 violations",
                not report.violations,
            )
        )
        opts.notes.append(f"soak seed {seed} ({size}): " + json.dumps(f))
        opts.notes += report.violations[:20]
    return rows
