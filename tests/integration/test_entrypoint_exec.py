"""docker/entrypoint.sh's later runs against a real Synapse: the script execs guardbot, which
runs in its place with the data directory's config (the runs without a homeserver are in
tests/repo/test_entrypoint.py)."""

from __future__ import annotations

import asyncio
import pathlib
import shutil
import signal
import subprocess
import time

import aiohttp

from tests.support.entrypoint import SCRIPT, env_for
from tests.support.homeserver import Homeserver


async def test_second_run_starts_guardbot_in_place_of_the_script(
    homeserver: Homeserver, tmp_path: pathlib.Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(homeserver.config_path, data / "config.yaml")
    log_path = tmp_path / "guardbot.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            ["sh", str(SCRIPT)], env=env_for(data), stdout=log, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{homeserver.guardbot_port}/_matrix/mau/ready"
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                assert proc.poll() is None, log_path.read_text()
                try:
                    async with session.get(url) as resp:
                        if resp.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                assert time.monotonic() < deadline, log_path.read_text()
                await asyncio.sleep(0.05)
        # exec: the script's own process is now guardbot, with the data directory's config.
        cmdline = pathlib.Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert b"-c" in cmdline and str(data / "config.yaml").encode() in cmdline
        assert any(part.endswith(b"guardbot") for part in cmdline), cmdline
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
    assert code == 0, log_path.read_text()
    log = log_path.read_text()
    assert homeserver.as_token not in log and homeserver.hs_token not in log
