"""scripts/demo tells the whole story with the README's set-up (the door, kick, named guests):
`python -m devtools.demo --once` runs it against its own throwaway Synapse and guardbot and
exits, 0 only when every step happened."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
REFUSAL = "Create an account (or sign in), then join again"
# Each step's line, in the order the story tells them.
STEPS = [
    "✓ Synapse running at http://127.0.0.1:",
    "✓ guardbot running as @guardbot:localhost, a server admin, policy kick, named guests on",
    "tries to join #lobby → refused at the door in guardbot's words (403): “Guests can't join",
    REFUSAL,
    "picks the username 'alice' through guardbot: 401, the homeserver's sign-up steps",
    "200, registered named guest @alice:localhost",
    "✓ @alice:localhost joins #lobby: let in",
    "✓ a reminder from @guardbot:localhost arrives by DM",
    "/_guardbot/claim/",
    "✓ @alice:localhost opens the link and sets a password on the claim page: “Password set”",
    "✓ @alice:localhost logs in with that password: it works",
    "✓ #games published → guardbot removed @",
    "✓ the whole story ran; stopping (--once)",
]


def run_demo(workdir: pathlib.Path, **env: str) -> subprocess.CompletedProcess[str]:
    # The demo's guardbot reads GUARDBOT_* from its environment: only the test's own reach it.
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_")}
    return subprocess.run(
        [sys.executable, "-m", "devtools.demo", "--once", str(workdir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**clean, **env},
        timeout=180,
    )


def test_the_demo_tells_the_whole_story(tmp_path: pathlib.Path) -> None:
    done = run_demo(tmp_path / "demo")
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    position = 0
    for step in STEPS:
        found = out.find(step, position)
        assert found >= 0, f"missing, or out of order: {step!r}\n{out}"
        position = found + len(step)
    assert "Guest access not allowed" not in out  # Synapse's words, not guardbot's
    assert "✗" not in out


def test_a_step_that_does_not_happen_fails_the_demo_saying_which(tmp_path: pathlib.Path) -> None:
    # Environment values win over guardbot's config file: with `off`, the door lets guests in.
    done = run_demo(tmp_path / "demo", GUARDBOT_POLICY__LISTED_ROOMS="off")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "✗ the demo failed: the guest @" in done.stdout
    assert "should have been refused at the door in guardbot's words" in done.stdout
    assert "registered named guest" not in done.stdout
