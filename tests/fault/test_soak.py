"""Overlapping faults, the ci size (tests/support/soak.py): a real Synapse with the door, two
guardbots on PostgreSQL behind the nginx example, mixed traffic, and a nemesis overlapping every
kind of fault on the schedule of a fixed seed (GUARDBOT_SOAK_SEED to try another). The checker
reads the rooms, the DMs and the audit log afterwards: no violation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devtools.nginx_pair import nginx
from tests.support.postgres import POSTGRES
from tests.support.soak import soak

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not POSTGRES, reason="the pair needs PostgreSQL"),
    pytest.mark.skipif(nginx() is None, reason="nginx is not installed (Debian: nginx-light)"),
]


async def test_overlapping_faults_break_no_invariant(tmp_path: Path) -> None:
    seed = int(os.environ.get("GUARDBOT_SOAK_SEED", "1"))
    assert POSTGRES
    report = await soak(seed, "ci", tmp_path, POSTGRES)
    print(f"soak seed {seed}: {report.figures}")
    assert not report.violations, "\n".join(report.violations)
    assert report.figures["faults"], report.figures  # the nemesis did inject faults
