"""guardbot's command line run as an admin runs it (`python -m guardbot ...` in a directory of
the test's own, without the test's GUARDBOT_* variables), on config files edited from the
packaged example."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path

EXAMPLE = resources.files("guardbot").joinpath("example-config.yaml").read_text()
TOKENS = {"as_token: generate": "as_token: as-secret", "hs_token: generate": "hs_token: hs-secret"}


def edited(*replacements: tuple[str, str]) -> str:
    """The example config with tokens filled in and these (old, new) texts replaced."""
    text = EXAMPLE
    for old, new in [*TOKENS.items(), *replacements]:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def guardbot(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`guardbot *args` run in tmp_path; its exit code and output."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "guardbot", *args],
        cwd=tmp_path,
        env={**environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def error_lines(stderr: str) -> list[str]:
    """stderr without the example config's INFO/DEBUG log lines."""
    return [
        line for line in stderr.splitlines() if not re.match(r"^\[[^\]]+\] \[(INFO|DEBUG)@", line)
    ]
