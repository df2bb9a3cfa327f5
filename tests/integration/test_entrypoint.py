"""docker/entrypoint.sh, run directly with a data directory of the test's own (no Docker engine
here): the first run writes config + registration and stops; later runs exec guardbot."""

from __future__ import annotations

import asyncio
import os
import pathlib
import shutil
import signal
import stat
import subprocess
import sys
import time

import aiohttp
import pytest
from ruamel.yaml import YAML

from .conftest import Homeserver, free_port

pytestmark = pytest.mark.integration
SCRIPT = pathlib.Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh"
_yaml = YAML(typ="safe")


def env_for(data: pathlib.Path, **config: str) -> dict[str, str]:
    """The container's environment: guardbot on PATH, the data directory, GUARDBOT_* keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDBOT_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["GUARDBOT_DATA_DIR"] = str(data)
    env.update({f"GUARDBOT_{k}": v for k, v in config.items()})
    return env


def entrypoint(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60,
        cwd="/",
    )  # fmt: skip


def first_run(data: pathlib.Path) -> subprocess.CompletedProcess[str]:
    data.mkdir()
    return entrypoint(
        env_for(data, HOMESERVER__DOMAIN="example.test",
                APPSERVICE__ADDRESS="http://guardbot:29330"),
    )  # fmt: skip


def test_first_run_writes_config_and_registration(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    result = first_run(data)
    assert result.returncode == 0, result.stderr
    config = _yaml.load((data / "config.yaml").read_text())
    registration = _yaml.load((data / "registration.yaml").read_text())
    tokens = config["appservice"]["as_token"], config["appservice"]["hs_token"]
    assert tokens == (registration["as_token"], registration["hs_token"])
    assert tokens[0] != tokens[1] and all(len(t) >= 40 and t != "generate" for t in tokens)
    # The environment goes into the registration, but is never written to the config file.
    assert registration["url"] == "http://guardbot:29330"
    assert registration["namespaces"]["users"][0]["regex"] == r"^@guardbot:example\.test$"
    assert config["homeserver"]["domain"] == "example.org"
    assert stat.S_IMODE((data / "config.yaml").stat().st_mode) == 0o600
    out = result.stdout
    assert "first run" in out and "Next:" in out and "app_service_config_files" in out
    assert str(data / "registration.yaml") in out
    assert f"doctor -c {data / 'config.yaml'} -r {data / 'registration.yaml'}" in out
    assert tokens[0] not in out + result.stderr and tokens[1] not in out + result.stderr

    other = first_run(tmp_path / "other")
    assert other.returncode == 0
    assert (
        _yaml.load((tmp_path / "other" / "config.yaml").read_text())["appservice"]["as_token"]
        not in tokens
    ), "tokens must be random"


def test_bad_environment_on_first_run_leaves_no_config(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    result = entrypoint(env_for(data, APPSERVICE__PORT="seventy"))
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "guardbot: appservice.port: must be a port number between 1 and 65535"
    ]
    assert not (data / "config.yaml").exists() and not (data / "registration.yaml").exists()


def test_missing_data_directory_is_one_line(tmp_path: pathlib.Path) -> None:
    result = entrypoint(env_for(tmp_path / "nowhere"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"guardbot: the data directory {tmp_path / 'nowhere'} does not exist; mount a volume there"
    ]


def test_second_run_execs_guardbot_which_fails_fast(tmp_path: pathlib.Path) -> None:
    data = tmp_path / "data"
    assert first_run(data).returncode == 0
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = entrypoint(env_for(data, HOMESERVER__ADDRESS=unreachable))
    assert result.returncode != 0
    # guardbot's log lines, then its one-line verdict; no traceback.
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"guardbot: homeserver.address: cannot reach {unreachable}"), last
    assert "Traceback" not in result.stderr and "Initializing guardbot" in result.stderr
    assert "first run" not in result.stdout
    # It ran in the data directory: the config's relative sqlite:guardbot.db landed there.
    assert (data / "guardbot.db").exists()

    # With arguments the container runs guardbot with them, e.g. the doctor.
    args = ["doctor", "-c", str(data / "config.yaml"), "-r", str(data / "registration.yaml")]
    doctor = entrypoint(env_for(data, HOMESERVER__ADDRESS=unreachable), *args)
    assert doctor.returncode == 1
    assert "homeserver: cannot reach" in doctor.stdout


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
