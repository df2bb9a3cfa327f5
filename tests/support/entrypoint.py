"""docker/entrypoint.sh as a container runs it, without Docker: the script, and the
environment a container gives it (guardbot on PATH, a data directory, GUARDBOT_* keys)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh"


def env_for(data: pathlib.Path, **config: str) -> dict[str, str]:
    """The container's environment: guardbot on PATH, the data directory, GUARDBOT_* keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["GUARDBOT_DATA_DIR"] = str(data)
    env.update({f"GUARDBOT_{k}": v for k, v in config.items()})
    return env


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
