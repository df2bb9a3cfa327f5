"""docker/entrypoint.sh, run directly with a data directory of the test's own (no Docker engine
here): the first run writes config + registration and stops; later runs exec guardbot, which
fails fast here (no homeserver). The exec into a guardbot that runs is in
tests/integration/test_entrypoint_exec.py."""

from __future__ import annotations

import pathlib
import stat
import subprocess

from ruamel.yaml import YAML

from tests.support.entrypoint import entrypoint, env_for
from tests.support.homeserver import free_port

_yaml = YAML(typ="safe")


def first_run(data: pathlib.Path) -> subprocess.CompletedProcess[str]:
    data.mkdir()
    return entrypoint(
        env_for(
            data, HOMESERVER__DOMAIN="example.test", APPSERVICE__ADDRESS="http://guardbot:29330"
        ),
    )


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
