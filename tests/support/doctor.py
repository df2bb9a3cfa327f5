"""`guardbot doctor` as an admin runs it, for the tests that read one of its lines."""

from __future__ import annotations

import pathlib
import subprocess
import sys


def doctor_line(
    config_path: pathlib.Path, env: dict[str, str], cwd: pathlib.Path, check: str
) -> tuple[str, str]:
    """The line of `check` (e.g. "door") and the whole output."""
    done = subprocess.run(
        [sys.executable, "-m", "guardbot", "doctor", "-c", str(config_path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    (line,) = [line for line in done.stdout.splitlines() if f" {check}:" in line]
    return line, done.stdout
